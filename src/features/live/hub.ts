import type { PromptDto } from "../prompts";
import type { BeginAnswer, CancelAnswer, GenerationAnswer } from "./chatroom-hub";
import type { HubMessage } from "./live.events";

/**
 * The one way routes and the queue consumer reach a chatroom's hub (the ChatroomHub Durable Object).
 */
const hubOf = (env: Env, chatroomId: string) => env.CHATROOM_HUB.get(env.CHATROOM_HUB.idFromName(chatroomId));

/** D1 is the record: a hub that cannot be reached is logged and never fails a change already stored. */
async function bestEffort<T>(what: string, chatroomId: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    console.error(JSON.stringify({ level: "error", message: `hub ${what} failed`, chatroomId, error: String(err) }));
    return undefined;
  }
}

/** Run `incarnation` (D1's counter, bumped by each retry) of the prompt was accepted. */
export const announcePrompt = (env: Env, prompt: PromptDto, incarnation: number) =>
  bestEffort("publishPrompt", prompt.chatroomId, () =>
    hubOf(env, prompt.chatroomId).publishPrompt(prompt, incarnation),
  );

export const announceReply = (env: Env, prompt: PromptDto, incarnation: number) =>
  bestEffort("publishReply", prompt.chatroomId, () => hubOf(env, prompt.chatroomId).publishReply(prompt, incarnation));

export const announceChatroomDeleted = (env: Env, chatroomId: string) =>
  bestEffort("chatroomDeleted", chatroomId, () => hubOf(env, chatroomId).chatroomDeleted(chatroomId));

/** Freezes the published text of the prompt's run `incarnation` so it can be stored as the cancelled reply. */
export const freezeForCancel = (
  env: Env,
  chatroomId: string,
  promptId: string,
  incarnation: number,
): Promise<CancelAnswer> => hubOf(env, chatroomId).cancel(promptId, incarnation);

export const isGenerating = (env: Env, chatroomId: string, promptId: string): Promise<boolean> =>
  hubOf(env, chatroomId).isGenerating(promptId);

/**
 * The calls a queue delivery makes while it writes the reply of one run (`incarnation`) of a prompt;
 * `prompt` (pending) announces the run if the hub has not heard of it yet.
 */
export function generationChannel(env: Env, prompt: PromptDto, incarnation: number, generation: string) {
  const { chatroomId, id: promptId } = prompt;
  const hub = hubOf(env, chatroomId);
  return {
    begin: (attempt: number, restart = false): Promise<BeginAnswer> =>
      hub.beginGeneration(promptId, generation, attempt, restart, prompt, incarnation),
    push: (text: string): Promise<GenerationAnswer> => hub.pushDelta(promptId, generation, text),
    retrying: (attempt: number, retryInSeconds: number) =>
      bestEffort("publishRetrying", chatroomId, () =>
        hub.publishRetrying(promptId, generation, attempt, retryInSeconds),
      ),
  };
}

export type GenerationChannel = ReturnType<typeof generationChannel>;

function subscribeUrl(chatroomId: string, options: { promptId?: string; after?: string }) {
  const url = new URL("https://hub/subscribe");
  url.searchParams.set("room", chatroomId);
  if (options.promptId) url.searchParams.set("prompt", options.promptId);
  if (options.after !== undefined) url.searchParams.set("after", options.after);
  return url;
}

/** Hands a client's WebSocket upgrade to the hub, which then holds the client itself. */
export async function forwardWebSocket(env: Env, chatroomId: string, after: string | undefined) {
  const response = await hubOf(env, chatroomId).fetch(subscribeUrl(chatroomId, { after }), {
    headers: { Upgrade: "websocket" },
  });
  if (!response.webSocket) throw new Error(`hub refused the WebSocket (${response.status})`);
  return new Response(null, { status: 101, webSocket: response.webSocket });
}

/** More unread messages than this means the reader stopped reading: the subscription gives up. */
const MAX_QUEUED = 5_000;

/** A Worker's own subscription to a hub: a WebSocket read as a queue of messages. */
export class HubSubscription {
  private readonly queue: HubMessage[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly socket: WebSocket | undefined) {
    if (!socket) return;
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      this.queue.push(JSON.parse(event.data) as HubMessage);
      if (this.queue.length > MAX_QUEUED) this.close();
      this.wake?.();
    });
    const ended = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.addEventListener("close", ended);
    socket.addEventListener("error", ended);
  }

  /** A subscription with no hub behind it (the hub could not be reached): it only ever goes idle. */
  static detached() {
    return new HubSubscription(undefined);
  }

  static async open(env: Env, chatroomId: string, options: { promptId?: string; after?: string } = {}) {
    const response = await hubOf(env, chatroomId).fetch(subscribeUrl(chatroomId, options), {
      headers: { Upgrade: "websocket" },
    });
    const socket = response.webSocket;
    if (!socket) throw new Error(`hub refused the subscription (${response.status})`);
    socket.accept();
    return new HubSubscription(socket);
  }

  /** The next message; "idle" when none came within `timeoutMs`, "closed" once the hub hung up. */
  async next(timeoutMs: number): Promise<HubMessage | "idle" | "closed"> {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.closed) return "closed";
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    if (timer) clearTimeout(timer);
    this.wake = undefined;
    return this.queue.shift() ?? (this.closed ? "closed" : "idle");
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket?.close(1000, "done");
    } catch {}
    this.wake?.();
  }
}
