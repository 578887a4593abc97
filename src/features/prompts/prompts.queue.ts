import { createDb, type Database } from "../../db/client";
import { uuidv7 } from "../../lib/ids";
import { UNTITLED } from "../chatrooms/chatrooms.repo";
import { announceReply, DeltaPublisher, generationChannel, isGenerating } from "../live";
import { effectiveModel } from "../models/models";
import { AiFailure, type ChatTurn, streamReply } from "./gemini";
import { cancelWithoutReply, loadPromptContext, type MessageRow, type ReplyToStore, storeReply } from "./prompts.repo";
import { toSettledPrompt } from "./prompts.schemas";
import { nameUntitledChatroom } from "./titles";

export type PromptJob = { promptId: string };

/** Matches `max_retries = 2` in wrangler.toml: the first delivery plus two retries. */
export const MAX_ATTEMPTS = 3;
/** The `dead_letter_queue` of the prompt queue in wrangler.toml. */
export const DEAD_LETTER_QUEUE = "gemini-prompts-dlq";
export const HISTORY_LIMIT = 20;

export async function enqueuePrompt(queue: Queue, promptId: string) {
  await queue.send({ promptId } satisfies PromptJob, { contentType: "json" });
}

/** Back-off for retryable failures: 5 s after the first attempt, 25 s after the second. */
export const retryDelaySeconds = (attempts: number) => 5 ** Math.min(attempts, 3);

/** Ack, retry with the usual back-off, or retry after a given delay. */
type Outcome = "ack" | "retry" | { retryAfterSeconds: number };

type SettleablePrompt = Pick<
  MessageRow,
  | "id"
  | "chatroom_id"
  | "user_id"
  | "quota_day"
  | "incarnation"
  | "content"
  | "created_at"
  | "parent_id"
  | "version_index"
  | "version_count"
  | "version_previous"
  | "version_next"
>;

/**
 * Stores a prompt's one reply (a failure note included) and, when this call is the one that stored it,
 * makes the owner's chatroom list show it and tells the chatroom's live subscribers.
 */
export async function settlePrompt(
  env: Env,
  db: Database,
  reply: Omit<ReplyToStore, "replyId" | "now" | "prompt"> & { prompt: SettleablePrompt },
) {
  const replyId = uuidv7();
  const now = new Date();
  const version = await storeReply(db, { ...reply, replyId, now });
  if (!version) return false;
  await announceReply(
    env,
    toSettledPrompt(reply.prompt, reply.outcome, {
      id: replyId,
      content: reply.content,
      createdAt: now,
      tokens: reply.tokens,
      model: reply.model,
      version,
    }),
    reply.prompt.incarnation,
  );
  return true;
}

/**
 * Settles a prompt as cancelled with exactly the text its live subscribers were sent: kept as the reply,
 * or, when there was none, no reply and the quota unit given back. True when this call settled it.
 */
export async function settleCancelled(env: Env, db: Database, prompt: SettleablePrompt, text: string) {
  if (text) return settlePrompt(env, db, { prompt, content: text, outcome: "cancelled" });
  if (!(await cancelWithoutReply(db, prompt, new Date()))) return false;
  await announceReply(env, toSettledPrompt(prompt, "cancelled", null), prompt.incarnation);
  return true;
}

/** The queue consumer: every message in the batch is answered concurrently and acked or retried explicitly. */
export async function consumePromptBatch(batch: MessageBatch<PromptJob>, env: Env) {
  const handle = batch.queue === DEAD_LETTER_QUEUE ? settleAbandonedPrompt : answerPrompt;
  await Promise.all(
    batch.messages.map(async (message) => {
      const started = performance.now();
      let outcome: Outcome;
      try {
        outcome = await handle(env, message.body.promptId, message.attempts);
      } catch (err) {
        // Our own trouble (D1 unavailable, a bug): let the queue deliver it again.
        console.error(
          JSON.stringify({
            level: "error",
            message: "prompt consumer failed",
            promptId: message.body?.promptId,
            error: String(err),
          }),
        );
        outcome = "retry";
      }
      const retryInSeconds =
        outcome === "ack"
          ? undefined
          : outcome === "retry"
            ? retryDelaySeconds(message.attempts)
            : outcome.retryAfterSeconds;
      if (retryInSeconds === undefined) message.ack();
      else message.retry({ delaySeconds: retryInSeconds });
      // One line per message for Workers Logs (ids and outcome only, never the prompt's text).
      console.log(
        JSON.stringify({
          level: "info",
          message: "queue message",
          queue: batch.queue,
          promptId: message.body?.promptId,
          attempts: message.attempts,
          outcome: retryInSeconds === undefined ? "ack" : "retry",
          retryInSeconds,
          durationMs: Math.round(performance.now() - started),
        }),
      );
    }),
  );
}

type Reply = {
  content: string;
  outcome: "completed" | "failed";
  tokens?: { prompt: number | null; completion: number | null; thoughts?: number | null };
  model?: string;
};

async function answerPrompt(env: Env, promptId: string, attempts: number): Promise<Outcome> {
  const db = createDb(env.DB);
  const { prompt, history } = await loadPromptContext(db, promptId, HISTORY_LIMIT);
  // Gone (its chatroom was deleted) or already settled by an earlier delivery or a cancel: nothing to do.
  if (prompt?.status !== "pending") return "ack";

  // The hub may not have heard of this run yet (the send announces it while enqueueing): `begin` does then.
  const pending = toSettledPrompt(prompt, "pending", null);
  const channel = generationChannel(env, pending, prompt.incarnation, crypto.randomUUID());
  const begin = (restart = false) =>
    channel.begin(attempts, restart).catch((err) => {
      // Without its hub the reply is still written and stored; it just is not streamed.
      console.error(
        JSON.stringify({ level: "error", message: "hub beginGeneration failed", promptId, error: String(err) }),
      );
      return undefined;
    });
  let begun = await begin();
  if (begun && "settled" in begun) {
    // Settled since we read it (another delivery was quicker), or retried without the hub hearing of it.
    const { prompt: now } = await loadPromptContext(db, promptId, 1);
    if (now?.status !== "pending" || now.incarnation !== prompt.incarnation) return "ack";
    begun = await begin(true);
  }
  if (begun?.stop) {
    await settleCancelled(env, db, prompt, begun.text);
    return "ack";
  }
  // Another delivery of this prompt is writing it right now; come back once its lease has run out
  // (by then it has stored the reply, or it died and this delivery takes over).
  if (begun && "busy" in begun) return { retryAfterSeconds: Math.ceil(begun.retryInMs / 1000) + 1 };

  const turns: ChatTurn[] = history
    .slice()
    .reverse()
    .map((message) => ({ role: message.role === "user" ? "user" : "model", text: message.content }));
  // A conversation sent to Gemini opens with a user turn; the 20-message window may cut one off.
  while (turns[0]?.role === "model") turns.shift();

  const stop = new AbortController();
  const deltas = begun ? new DeltaPublisher(channel, () => stop.abort()) : undefined;
  let reply: Reply;
  try {
    const answer = await streamReply(env, turns, {
      onText: (piece) => deltas?.add(piece),
      signal: stop.signal,
      // Settings apply to prompts sent after the change; a run reads them as they are when it starts.
      model: effectiveModel(env, prompt.room_model, prompt.user_pro === 1),
      systemInstruction: prompt.room_system_instruction ?? undefined,
    });
    await deltas?.flush();
    reply = {
      content: answer.text,
      outcome: "completed",
      tokens: { prompt: answer.promptTokens, completion: answer.completionTokens, thoughts: answer.thoughtTokens },
      model: answer.model,
    };
  } catch (err) {
    await deltas?.settle();
    if (deltas?.stoppedWith !== undefined) {
      await settleCancelled(env, db, prompt, deltas.stoppedWith);
      return "ack";
    }
    const failure =
      err instanceof AiFailure ? err : new AiFailure(true, "The AI service could not be reached.", String(err));
    console.warn(
      JSON.stringify({
        level: "warn",
        message: "Gemini call failed",
        promptId,
        attempts,
        retryable: failure.retryable,
        detail: failure.detail,
      }),
    );
    if (failure.retryable && attempts < MAX_ATTEMPTS) {
      if (begun) await channel.retrying(attempts, retryDelaySeconds(attempts));
      return "retry";
    }
    reply = { content: failure.userMessage, outcome: "failed" };
  }
  // Cancelled after the last piece was written but before the last push: keep what was published.
  if (deltas?.stoppedWith !== undefined) {
    await settleCancelled(env, db, prompt, deltas.stoppedWith);
    return "ack";
  }
  const stored = await settlePrompt(env, db, { prompt, ...reply });
  // A chatroom created without a name is named after its first completed reply.
  if (stored && reply.outcome === "completed" && prompt.room_name === UNTITLED) {
    await nameUntitledChatroom(env, db, {
      chatroomId: prompt.chatroom_id,
      prompt: prompt.content,
      reply: reply.content,
    });
  }
  return "ack";
}

/**
 * A prompt that exhausted its deliveries without an answer: store the failure note (quota unit given
 * back) so it leaves pending and can be retried. Already answered prompts are left as they are.
 */
export async function settleAbandonedPrompt(env: Env, promptId: string): Promise<Outcome> {
  const db = createDb(env.DB);
  const { prompt } = await loadPromptContext(db, promptId, 1);
  if (prompt?.status !== "pending") return "ack";
  // A delivery that is still writing the reply was only slow, not lost: let it finish.
  if (await isGenerating(env, prompt.chatroom_id, promptId).catch(() => false)) return "retry";
  const content = "This prompt could not be answered because of a problem on our side. Please retry it.";
  await settlePrompt(env, db, { prompt, content, outcome: "failed" });
  return "ack";
}
