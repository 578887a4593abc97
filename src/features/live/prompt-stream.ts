import type { Context } from "hono";
import { createDb, type Database } from "../../db/client";
import { notFound, unauthorized } from "../../lib/errors";
import { isId } from "../../lib/ids";
import type { AppEnv } from "../../types";
import { findPromptWithReply, type PromptDto, toPromptResponse, type UsageDto } from "../messages";
import { HubSubscription } from "./hub";
import type { HubSubscriber, LiveEvent } from "./live.events";
import { heartbeatMs, liveStreamResponse } from "./live-stream";

/** How often a stream without its hub asks D1 whether the prompt has settled. */
const DETACHED_CHECK_MS = 2_000;

/** The token or ticket that opened this request, as the hub keeps it with a subscription. */
export const subscriberOf = (c: Context<AppEnv>): HubSubscriber => ({
  userId: c.get("userId"),
  tokenVersion: c.get("tokenVersion"),
  tokenId: c.get("tokenId"),
});

/**
 * One prompt as a stream: `prompt` (with `usage` when given), the text so far as one `delta`, then its
 * live events until `reply`. D1 is read first: it proves the prompt is the caller's before any hub is
 * touched, and names the prompt's run, so the hub's snapshot (taken as the subscription starts, with
 * nothing missed in between) never shows an earlier run's reply. While the stream is quiet D1 is asked
 * again, in case the hub missed the reply.
 */
export async function promptStream(
  c: Context<AppEnv>,
  input: {
    chatroomId: string;
    promptId: string;
    /** A prompt just accepted (its first run): no need to read it back. */
    known?: PromptDto;
    usage?: UsageDto;
    headers?: Record<string, string>;
  },
): Promise<Response> {
  const { chatroomId, promptId } = input;
  if (!isId(chatroomId) || !isId(promptId)) throw notFound("Message");
  // The reply is written by the queue consumer, outside this request's D1 session: read it at the
  // primary, where it lands first, not at a replica the session's bookmark allows.
  const db = createDb(c.env.DB);
  const userId = c.get("userId");
  let prompt = input.known;
  let run = 0;
  if (!prompt) {
    const row = await findPromptWithReply(db, userId, chatroomId, promptId);
    if (!row) throw notFound("Message");
    prompt = toPromptResponse(row);
    run = row.incarnation;
  }
  // Without its hub (unreachable) the stream still tells the truth, from D1, checked every 2 s.
  const subscription = await HubSubscription.open(c.env, chatroomId, {
    subscriber: subscriberOf(c),
    promptId,
    run,
  }).catch((err) => {
    console.error(JSON.stringify({ level: "error", message: "hub subscribe failed", chatroomId, error: String(err) }));
    return undefined;
  });
  const first = subscription ? await subscription.next(5_000) : undefined;
  const snapshot = typeof first === "object" && "kind" in first ? first : undefined;
  const head = snapshot?.head ?? "0";
  const initial: LiveEvent[] = [
    { id: head, event: "prompt", data: input.usage ? { prompt, usage: input.usage } : { prompt } },
  ];
  // The hub answers a subscriber whose token was revoked a moment ago with `revoked` instead.
  if (typeof first === "object" && "event" in first) initial.push(first);
  else if (prompt.status !== "pending") initial.push({ id: head, event: "reply", data: { prompt } });
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
 * Holds a long-poll until the prompt's run `run` leaves pending: woken by the hub's `reply`, with D1
 * asked again at most every 2 s as the fallback. Returns the prompt as D1 has it, or undefined once it
 * is gone (its chatroom was deleted), which the hub's `deleted` makes known at once. A revocation of
 * the caller's token during the wait is a 401.
 */
export async function waitUntilSettled(
  env: Env,
  db: Database,
  input: { subscriber: HubSubscriber; chatroomId: string; promptId: string; run: number; deadline: number },
) {
  const { subscriber, chatroomId, promptId, run, deadline } = input;
  const read = () => findPromptWithReply(db, subscriber.userId, chatroomId, promptId);
  const subscription = await HubSubscription.open(env, chatroomId, { subscriber, promptId, run }).catch(
    () => undefined,
  );
  try {
    let row = await read();
    while (row && row.status === "pending" && Date.now() < deadline) {
      const message = subscription
        ? await subscription.next(Math.min(2_000, deadline - Date.now()))
        : await new Promise<"idle">((resolve) =>
            setTimeout(() => resolve("idle"), Math.min(1_000, deadline - Date.now())),
          );
      if (message === "closed") {
        // The hub hung up: the chatroom was deleted (D1 says so now), or the hub is going away.
        row = await read();
        if (row?.status === "pending") {
          await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, deadline - Date.now()))));
        }
        continue;
      }
      if (typeof message === "object" && "kind" in message && !message.settled) continue;
      if (typeof message === "object" && "event" in message && message.event === "delta") continue;
      // Authorization holds for the whole wait: a token revoked meanwhile gets no answer but its 401.
      if (typeof message === "object" && "event" in message && message.event === "revoked") {
        throw unauthorized(message.data.reason === "logout" ? "loggedOut" : "revoked");
      }
      row = await read();
    }
    return row;
  } finally {
    subscription?.close();
  }
}
