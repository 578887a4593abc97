import { createDb, type Database } from "../../db/client";
import { uuidv7 } from "../../lib/ids";
import { bumpChatroomList } from "../chatrooms/chatrooms.cache";
import { AiFailure, type ChatTurn, generateReply } from "./gemini";
import { loadPromptContext, type ReplyToStore, storeReply } from "./prompts.repo";

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

type Outcome = "ack" | "retry";

/**
 * Stores a prompt's one reply (a failure note included) and, when this call is the one that stored it,
 * makes the owner's chatroom list show it.
 */
export async function settlePrompt(env: Env, db: Database, reply: Omit<ReplyToStore, "replyId" | "now">) {
  const stored = await storeReply(db, { ...reply, replyId: uuidv7(), now: new Date() });
  if (stored) await bumpChatroomList(env.CACHE, reply.prompt.user_id);
}

/** The queue consumer: every message in the batch is answered concurrently and acked or retried explicitly. */
export async function consumePromptBatch(batch: MessageBatch<PromptJob>, env: Env) {
  const handle = batch.queue === DEAD_LETTER_QUEUE ? settleAbandonedPrompt : answerPrompt;
  await Promise.all(
    batch.messages.map(async (message) => {
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
      if (outcome === "retry") message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
      else message.ack();
    }),
  );
}

async function answerPrompt(env: Env, promptId: string, attempts: number): Promise<Outcome> {
  const db = createDb(env.DB);
  const { prompt, history } = await loadPromptContext(db, promptId, HISTORY_LIMIT);
  // Gone (its chatroom was deleted) or already answered by an earlier delivery: nothing to do.
  if (prompt?.status !== "pending") return "ack";

  const turns: ChatTurn[] = history
    .slice()
    .reverse()
    .map((message) => ({ role: message.role === "user" ? "user" : "model", text: message.content }));
  // A conversation sent to Gemini opens with a user turn; the 20-message window may cut one off.
  while (turns[0]?.role === "model") turns.shift();
  let reply: {
    content: string;
    outcome: "completed" | "failed";
    tokens?: { prompt: number | null; completion: number | null };
  };
  try {
    const answer = await generateReply(env, turns);
    reply = {
      content: answer.text,
      outcome: "completed",
      tokens: { prompt: answer.promptTokens, completion: answer.completionTokens },
    };
  } catch (err) {
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
    if (failure.retryable && attempts < MAX_ATTEMPTS) return "retry";
    reply = { content: failure.userMessage, outcome: "failed" };
  }
  await settlePrompt(env, db, { prompt, ...reply });
  return "ack";
}

/**
 * A prompt that exhausted its deliveries without an answer: store the failure note (quota unit given
 * back) so it leaves pending and can be retried. Already answered prompts are left as they are.
 */
async function settleAbandonedPrompt(env: Env, promptId: string): Promise<Outcome> {
  const db = createDb(env.DB);
  const { prompt } = await loadPromptContext(db, promptId, 1);
  if (prompt?.status !== "pending") return "ack";
  const content = "This prompt could not be answered because of a problem on our side. Please retry it.";
  await settlePrompt(env, db, { prompt, content, outcome: "failed" });
  return "ack";
}
