import type { Context } from "hono";
import { createDb, type Database } from "../../db/client";
import { notFound } from "../../lib/errors";
import type { AppEnv } from "../../types";
import { findPromptWithReply, type PromptDto, toPromptResponse, type UsageDto } from "../prompts";
import { HubSubscription } from "./hub";
import type { LiveEvent } from "./live.events";
import { heartbeatMs, liveStreamResponse } from "./live-stream";

/** How often a stream without its hub asks D1 whether the prompt has settled. */
const DETACHED_CHECK_MS = 2_000;

/**
 * One prompt as a stream: `prompt` (with `usage` when given), the text so far as one `delta`, then its
 * live events until `reply`. The hub subscription is opened before D1 is read, so nothing that happens
 * in between is missed; while the stream is quiet D1 is asked again, in case the hub missed the reply.
 */
export async function promptStream(
  c: Context<AppEnv>,
  input: {
    chatroomId: string;
    promptId: string;
    known?: PromptDto;
    usage?: UsageDto;
    headers?: Record<string, string>;
  },
): Promise<Response> {
  const { chatroomId, promptId } = input;
  // Without its hub (unreachable) the stream still tells the truth, from D1, checked every 2 s.
  const subscription = await HubSubscription.open(c.env, chatroomId, { promptId }).catch((err) => {
    console.error(JSON.stringify({ level: "error", message: "hub subscribe failed", chatroomId, error: String(err) }));
    return undefined;
  });
  const first = subscription ? await subscription.next(5_000) : undefined;
  const snapshot = typeof first === "object" && "kind" in first ? first : undefined;
  const head = snapshot?.head ?? "0";
  // The reply is written by the queue consumer, outside this request's D1 session: read it at the
  // primary, where it lands first, not at a replica the session's bookmark allows.
  const db = createDb(c.env.DB);
  const userId = c.var.userId;
  let prompt = input.known;
  if (!prompt) {
    const row = await findPromptWithReply(db, userId, chatroomId, promptId);
    if (!row) {
      subscription?.close();
      throw notFound("Message");
    }
    prompt = toPromptResponse(row);
  }
  const initial: LiveEvent[] = [
    { id: head, event: "prompt", data: input.usage ? { prompt, usage: input.usage } : { prompt } },
  ];
  if (prompt.status !== "pending") initial.push({ id: head, event: "reply", data: { prompt } });
  else if (snapshot?.settled) initial.push({ id: head, event: "reply", data: { prompt: snapshot.settled } });
  else if (snapshot?.text) initial.push({ id: head, event: "delta", data: { promptId, text: snapshot.text } });
  return liveStreamResponse({
    request: c.req.raw,
    subscription: subscription ?? HubSubscription.detached(),
    heartbeatMs: subscription ? heartbeatMs(c.env) : DETACHED_CHECK_MS,
    initial,
    headers: input.headers,
    endsAfter: (event) => event.event === "reply" && event.data.prompt.id === promptId,
    onIdle: async () => {
      const row = await findPromptWithReply(db, userId, chatroomId, promptId);
      if (row && row.status === "pending") return [];
      if (!row) return [{ id: head, event: "deleted", data: { chatroomId } }];
      return [{ id: head, event: "reply", data: { prompt: toPromptResponse(row) } }];
    },
  });
}

/**
 * Holds a long-poll until the prompt leaves pending: woken by the hub's `reply`, with D1 asked again at
 * most every 2 s as the fallback. Returns the prompt as D1 has it.
 */
export async function waitUntilSettled(
  env: Env,
  db: Database,
  input: { userId: string; chatroomId: string; promptId: string; deadline: number },
) {
  const { userId, chatroomId, promptId, deadline } = input;
  const read = () => findPromptWithReply(db, userId, chatroomId, promptId);
  const subscription = await HubSubscription.open(env, chatroomId, { promptId }).catch(() => undefined);
  try {
    let row = await read();
    while (row && row.status === "pending" && Date.now() < deadline) {
      const message = subscription
        ? await subscription.next(Math.min(2_000, deadline - Date.now()))
        : await new Promise<"idle">((resolve) =>
            setTimeout(() => resolve("idle"), Math.min(1_000, deadline - Date.now())),
          );
      if (message === "closed") {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, deadline - Date.now()))));
      } else if (typeof message === "object" && "kind" in message && !message.settled) {
        continue;
      } else if (typeof message === "object" && "event" in message && message.event === "delta") {
        continue;
      }
      row = (await read()) ?? row;
    }
    return row;
  } finally {
    subscription?.close();
  }
}
