import type { Database } from "../../db/client";
import { toHex } from "../../lib/crypto";
import { AppError, notFound } from "../../lib/errors";
import { uuidv7 } from "../../lib/ids";
import { nextUtcMidnight, secondsUntil } from "../../lib/time";
import { announcePrompt } from "../live";
import { enqueuePrompt, settlePrompt } from "./prompts.queue";
import {
  type NewPrompt,
  recordPrompt,
  releaseIdempotencyKey,
  requeueFailedPrompt,
  saveIdempotentResponse,
} from "./prompts.repo";
import type { PromptDto } from "./prompts.schemas";
import { BASIC_DAILY_PROMPT_LIMIT, describeUsage, utcDay } from "./quota";

const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

export type PromptAnswer = {
  status: 202;
  headers: Record<string, string>;
  body: { success: true; message: string; prompt: PromptDto; usage: ReturnType<typeof describeUsage> };
};

/** RateLimit-* (draft IETF names the contract uses) for Basic users; Pro users have no limit to report. */
function rateLimitHeaders(pro: boolean, used: number, now: Date): Record<string, string> {
  if (pro) return {};
  return {
    "RateLimit-Limit": String(BASIC_DAILY_PROMPT_LIMIT),
    "RateLimit-Remaining": String(Math.max(0, BASIC_DAILY_PROMPT_LIMIT - used)),
    "RateLimit-Reset": String(secondsUntil(nextUtcMidnight(now), now)),
  };
}

function dailyLimitReached(now: Date) {
  const reset = String(Math.max(1, secondsUntil(nextUtcMidnight(now), now)));
  return new AppError(
    429,
    "DAILY_LIMIT_REACHED",
    `Basic accounts can send ${BASIC_DAILY_PROMPT_LIMIT} prompts per day; upgrade to Pro for unlimited prompts`,
    undefined,
    {
      "Retry-After": reset,
      "RateLimit-Limit": String(BASIC_DAILY_PROMPT_LIMIT),
      "RateLimit-Remaining": "0",
      "RateLimit-Reset": reset,
    },
    { usage: describeUsage("basic", BASIC_DAILY_PROMPT_LIMIT, now) },
  );
}

async function fingerprintOf(chatroomId: string, content: string) {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${chatroomId}\n${content}`)));
}

function accepted(prompt: PromptDto, pro: boolean, used: number, now: Date, message: string): PromptAnswer {
  return {
    status: 202,
    headers: rateLimitHeaders(pro, used, now),
    body: { success: true, message, prompt, usage: describeUsage(pro ? "pro" : "basic", used, now) },
  };
}

/**
 * Hands the prompt to the queue; if the queue refuses it, the prompt is settled as failed at once
 * (its quota unit given back) so it never hangs in pending and can be retried.
 */
async function enqueueOrFail(
  env: Env,
  db: Database,
  prompt: PromptDto,
  run: { userId: string; day: string; incarnation: number },
) {
  // Both at once: a consumer that reaches the hub before the announcement announces the run itself,
  // so subscribers still hear of the prompt before a word of its reply.
  const [, queued] = await Promise.all([
    announcePrompt(env, prompt, run.incarnation),
    enqueuePrompt(env.PROMPT_QUEUE, prompt.id).then(
      () => true,
      (err) => {
        console.error(
          JSON.stringify({ level: "error", message: "enqueue failed", promptId: prompt.id, error: String(err) }),
        );
        return false;
      },
    ),
  ]);
  if (queued) return;
  await settlePrompt(env, db, {
    prompt: {
      id: prompt.id,
      chatroom_id: prompt.chatroomId,
      user_id: run.userId,
      quota_day: run.day,
      incarnation: run.incarnation,
      content: prompt.content,
      created_at: Date.parse(prompt.createdAt),
    },
    content: "This prompt could not be queued for the AI. Please retry it.",
    outcome: "failed",
  });
  throw new AppError(
    503,
    "QUEUE_UNAVAILABLE",
    "The prompt could not be queued; it was marked failed and can be retried",
  );
}

export async function sendPrompt(
  env: Env,
  db: Database,
  input: { userId: string; chatroomId: string; content: string; idempotencyKey?: string },
): Promise<PromptAnswer & { replayed?: true }> {
  const now = new Date();
  const day = utcDay(now);
  const { userId, chatroomId, content, idempotencyKey } = input;
  const prompt: NewPrompt = { id: uuidv7(now.getTime()), userId, chatroomId, content, day, now };
  if (idempotencyKey) {
    prompt.idempotency = {
      key: idempotencyKey,
      fingerprint: await fingerprintOf(chatroomId, content),
      notBefore: new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS),
    };
  }
  const recorded = await recordPrompt(db, prompt);
  if (recorded.kind === "not-found") throw notFound("Chatroom");
  if (recorded.kind === "replay") {
    if (recorded.fingerprint !== prompt.idempotency?.fingerprint) {
      throw new AppError(
        409,
        "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was already used for a different request",
      );
    }
    if (!recorded.response) {
      throw new AppError(
        409,
        "IDEMPOTENCY_KEY_IN_USE",
        "A request with this Idempotency-Key is still in progress",
        undefined,
        {
          "Retry-After": "1",
        },
      );
    }
    return { ...(JSON.parse(recorded.response) as PromptAnswer), replayed: true };
  }
  if (recorded.kind === "limited") {
    if (prompt.idempotency) await releaseIdempotencyKey(db, userId, prompt.idempotency.key, prompt.id);
    throw dailyLimitReached(now);
  }
  const pending: PromptDto = {
    id: prompt.id,
    chatroomId,
    role: "user",
    content,
    status: "pending",
    createdAt: now.toISOString(),
    reply: null,
  };
  try {
    await enqueueOrFail(env, db, pending, { userId, day, incarnation: 0 });
  } catch (err) {
    // The prompt was settled as failed: a retry with the same key must be able to send it again.
    if (prompt.idempotency) await releaseIdempotencyKey(db, userId, prompt.idempotency.key, prompt.id);
    throw err;
  }
  const answer = accepted(
    pending,
    recorded.pro,
    recorded.used,
    now,
    "Prompt accepted; the reply will arrive asynchronously",
  );
  if (prompt.idempotency)
    await saveIdempotentResponse(db, userId, prompt.idempotency.key, prompt.id, JSON.stringify(answer));
  return answer;
}

export async function retryPrompt(
  env: Env,
  db: Database,
  input: { userId: string; chatroomId: string; promptId: string },
): Promise<PromptAnswer> {
  const now = new Date();
  const day = utcDay(now);
  const { userId, chatroomId, promptId } = input;
  const retried = await requeueFailedPrompt(db, { userId, chatroomId, promptId, day, now });
  if (retried.kind === "not-found") throw notFound("Message");
  if (retried.kind === "not-retryable") {
    throw new AppError(409, "NOT_FAILED", "Only a failed or cancelled prompt can be retried");
  }
  if (retried.kind === "limited") throw dailyLimitReached(now);
  const pending: PromptDto = {
    id: promptId,
    chatroomId,
    role: "user",
    content: retried.content,
    status: "pending",
    createdAt: retried.createdAt.toISOString(),
    reply: null,
  };
  await enqueueOrFail(env, db, pending, { userId, day, incarnation: retried.incarnation });
  return accepted(pending, retried.pro, retried.used, now, "Prompt queued again");
}
