import { createDb } from "../../db/client";
import { type ChatroomDto, listChatroomIds } from "../chatrooms";
import type { PromptDto } from "../messages";
import type { BeginAnswer, CancelAnswer, GenerationAnswer } from "./chatroom-hub";
import type { CaughtUp, HubMessage, HubSubscriber, StreamRevocation } from "./live.events";

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

/**
 * Run `incarnation` (D1's counter, bumped by each retry or regeneration) of the prompt was accepted; with
 * `activeLeafId`, the active branch moved too (one call: `prompt`, then `branch`).
 */
export const announcePrompt = (env: Env, prompt: PromptDto, incarnation: number, activeLeafId?: string) =>
  bestEffort("publishPrompt", prompt.chatroomId, () =>
    hubOf(env, prompt.chatroomId).publishPrompt(prompt, incarnation, activeLeafId),
  );

/** The chatroom's name or settings changed: its streams get it as it now is. */
export const announceChatroom = (env: Env, chatroom: ChatroomDto) =>
  bestEffort("publishChatroom", chatroom.id, () => hubOf(env, chatroom.id).publishChatroom(chatroom));

/** The chatroom's active branch now ends at `activeLeafId` (a switch). */
export const announceBranch = (env: Env, chatroomId: string, activeLeafId: string | null) =>
  bestEffort("publishBranch", chatroomId, () => hubOf(env, chatroomId).publishBranch(activeLeafId));

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

/** What a subscription asks the hub for, and whose token or ticket opened it. */
export type SubscribeOptions = {
  subscriber: HubSubscriber;
  /** One prompt only, starting with a snapshot of what the hub knows of its run `run` (D1's incarnation). */
  promptId?: string;
  run?: number;
  /** Replay the events after this id. */
  after?: string;
};

function subscribeUrl(chatroomId: string, options: SubscribeOptions) {
  const url = new URL("https://hub/subscribe");
  const { subscriber } = options;
  url.searchParams.set("room", chatroomId);
  url.searchParams.set("user", subscriber.userId);
  url.searchParams.set("ver", String(subscriber.tokenVersion));
  if (subscriber.tokenId !== undefined) url.searchParams.set("tid", subscriber.tokenId);
  if (options.promptId) url.searchParams.set("prompt", options.promptId);
  if (options.run !== undefined) url.searchParams.set("run", String(options.run));
  if (options.after !== undefined) url.searchParams.set("after", options.after);
  return url;
}

/** Hands a client's WebSocket upgrade to the hub, which then holds the client itself. */
export async function forwardWebSocket(env: Env, chatroomId: string, options: SubscribeOptions) {
  const response = await hubOf(env, chatroomId).fetch(subscribeUrl(chatroomId, options), {
    headers: { Upgrade: "websocket" },
  });
  if (!response.webSocket) throw new Error(`hub refused the WebSocket (${response.status})`);
  return new Response(null, { status: 101, webSocket: response.webSocket });
}

/** Hub calls made at once when every hub of a user is told something; the rest wait for a free slot. */
const HUB_CONCURRENCY = 50;

/** Calls `call` on the hub of each chatroom, at most HUB_CONCURRENCY at once; a hub that fails is logged. */
async function tellHubs(
  env: Env,
  what: string,
  chatroomIds: readonly string[],
  call: (hub: ReturnType<typeof hubOf>, chatroomId: string) => Promise<unknown>,
) {
  let next = 0;
  const worker = async () => {
    while (next < chatroomIds.length) {
      const chatroomId = chatroomIds[next++] as string;
      await bestEffort(what, chatroomId, () => call(hubOf(env, chatroomId), chatroomId));
    }
  };
  await Promise.all(Array.from({ length: Math.min(HUB_CONCURRENCY, chatroomIds.length) }, worker));
}

type WaitUntil = { waitUntil(promise: Promise<unknown>): void };

/**
 * Ends the open streams a revocation covers: every hub of the user's chatrooms is told, and each ends
 * the streams opened with a revoked token or ticket (`revoked`, then closed). Hubs with no subscriber
 * do nothing and keep no storage. Runs after the answer (waitUntil); a hub that cannot be told is
 * logged, and its streams end when they next reconnect (their token no longer passes).
 */
export function endRevokedStreams(env: Env, ctx: WaitUntil, revocation: StreamRevocation) {
  ctx.waitUntil(
    (async () => {
      const rooms = await listChatroomIds(createDb(env.DB), revocation.userId);
      await tellHubs(env, "revokeStreams", rooms, (hub) => hub.revokeStreams(revocation));
    })().catch((err: unknown) => {
      console.error(JSON.stringify({ level: "error", message: "ending revoked streams failed", error: String(err) }));
    }),
  );
}

/**
 * The chatrooms of a deleted account are gone: each hub sends `deleted` to its streams, closes them and
 * drops what it stored. After the answer (waitUntil), as for a revocation; a hub that cannot be told is
 * logged, and its streams' tokens no longer pass when they reconnect.
 */
export function announceChatroomsDeleted(env: Env, ctx: WaitUntil, chatroomIds: readonly string[]) {
  ctx.waitUntil(tellHubs(env, "chatroomDeleted", chatroomIds, (hub, id) => hub.chatroomDeleted(id)));
}

/**
 * More unread bytes than this means the reader stopped reading (or reads far too slowly): the
 * subscription gives up, its queue is let go at once, and the client resumes with Last-Event-ID.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

/** A Worker's own subscription to a hub: a WebSocket read as a queue of messages. */
export class HubSubscription {
  private readonly queue: Array<{ message: HubMessage; bytes: number }> = [];
  private queuedBytes = 0;
  /** Set when the subscription gave up because its reader fell more than MAX_QUEUED_BYTES behind. */
  overflowed = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private markEnded: () => void = () => {};
  /** Settles once the subscription is over, closed by either side. */
  readonly ended = new Promise<void>((resolve) => {
    this.markEnded = resolve;
  });

  private constructor(
    private readonly socket: WebSocket | undefined,
    private counting = true,
  ) {
    if (!socket) return;
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || this.closed) return;
      const message = JSON.parse(event.data) as HubMessage | CaughtUp;
      if ("kind" in message && message.kind === "caught-up") {
        this.counting = true;
        return;
      }
      const bytes = this.counting ? event.data.length : 0;
      this.queue.push({ message, bytes });
      this.queuedBytes += bytes;
      if (this.queuedBytes > MAX_QUEUED_BYTES) {
        this.overflowed = true;
        this.close();
      }
      this.wake?.();
    });
    const ended = () => {
      this.closed = true;
      this.wake?.();
      this.markEnded();
    };
    socket.addEventListener("close", ended);
    socket.addEventListener("error", ended);
  }

  /** A subscription with no hub behind it (the hub could not be reached): it only ever goes idle. */
  static detached() {
    return new HubSubscription(undefined);
  }

  static async open(env: Env, chatroomId: string, options: SubscribeOptions) {
    const url = subscribeUrl(chatroomId, options);
    url.searchParams.set("worker", "1");
    const response = await hubOf(env, chatroomId).fetch(url, { headers: { Upgrade: "websocket" } });
    const socket = response.webSocket;
    if (!socket) throw new Error(`hub refused the subscription (${response.status})`);
    socket.accept();
    // A replay comes first, as one burst the hub has bounded already; the reader's backlog counts after it.
    return new HubSubscription(socket, options.after === undefined);
  }

  /** The next message; "idle" when none came within `timeoutMs`, "closed" once the hub hung up. */
  async next(timeoutMs: number): Promise<HubMessage | "idle" | "closed"> {
    const queued = this.take();
    if (queued) return queued;
    if (this.closed) return "closed";
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, timeoutMs);
    });
    if (timer) clearTimeout(timer);
    this.wake = undefined;
    return this.take() ?? (this.closed ? "closed" : "idle");
  }

  /** The oldest queued message; none once the subscription was closed for falling behind. */
  private take(): HubMessage | undefined {
    if (this.overflowed) return undefined;
    const entry = this.queue.shift();
    if (entry) this.queuedBytes -= entry.bytes;
    return entry?.message;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this.overflowed) this.queue.length = 0;
    this.markEnded();
    try {
      this.socket?.close(1000, "done");
    } catch {}
    this.wake?.();
  }
}
