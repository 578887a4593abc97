import { createExecutionContext, env } from "cloudflare:test";
import worker from "../src/index";
import { expectDocumentedEvent } from "./documented";
import { createChatroom, verifiedUser } from "./helpers";

// biome-ignore lint/suspicious/noExplicitAny: tests read event data field by field, as helpers.ts reads JSON.
export type SseEvent = { id: string; event: string; data: any };

/** Opens a live stream on the real Worker and reads its Server-Sent Events one by one. */
export async function openStream(
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; env?: Env } = {},
) {
  const controller = new AbortController();
  const headers = new Headers({ Accept: "text/event-stream", ...options.headers });
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  if (options.body !== undefined) headers.set("Content-Type", "application/json");
  const response = await worker.fetch(
    new Request(`http://localhost${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: controller.signal,
    }),
    options.env ?? env,
    createExecutionContext(),
  );
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const comments: string[] = [];
  let ended = false;
  /** The next event, or null once the stream ended. */
  const next = async (timeoutMs = 5_000): Promise<SseEvent | null> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const cut = buffer.indexOf("\n\n");
      if (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields: Record<string, string> = {};
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) comments.push(line.slice(1).trim());
          else {
            const at = line.indexOf(": ");
            if (at > 0) fields[line.slice(0, at)] = line.slice(at + 2);
          }
        }
        if (fields.event) {
          const event = { id: fields.id ?? "", event: fields.event, data: JSON.parse(fields.data ?? "null") };
          await expectDocumentedEvent(event);
          return event;
        }
        continue;
      }
      if (ended || !reader) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms; got so far: ${buffer}`);
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), left)),
      ]);
      if (chunk.done) ended = true;
      else buffer += decoder.decode(chunk.value, { stream: true });
    }
  };
  /** Every event until the stream ends. */
  const rest = async (timeoutMs = 5_000) => {
    const events: SseEvent[] = [];
    for (let event = await next(timeoutMs); event; event = await next(timeoutMs)) events.push(event);
    return events;
  };
  const close = () => {
    controller.abort();
    reader?.cancel().catch(() => {});
  };
  return { response, next, rest, close, comments };
}

export async function roomOfNewUser() {
  const user = await verifiedUser();
  const room = await createChatroom(user.token);
  return { ...user, room };
}

/** The chatroom's hub, for tests that drive or inspect it directly. */
export const hubOf = (chatroomId: string) => env.CHATROOM_HUB.get(env.CHATROOM_HUB.idFromName(chatroomId));
