import type { Database } from "../../db/client";
import { toHex } from "../../lib/crypto";
import { AppError, notFound } from "../../lib/errors";
import { uuidv7 } from "../../lib/ids";
import { nextUtcMidnight, secondsUntil } from "../../lib/time";
import { announcePrompt } from "../live";
import { type PromptDto, versionOf } from "../messages";
import { enqueuePrompt, settlePrompt } from "./prompts.queue";
import {
  type NewPrompt,
  recordPrompt,
  releaseIdempotencyKey,
  requeuePrompt,
  saveIdempotentResponse,
} from "./prompts.repo";
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

/** What an Idempotency-Key's first request was: a repeat must be the same request. */
async function fingerprintOf(...parts: string[]) {
  return toHex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n"))));
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
  run: { userId: string; day: string; incarnation: number; activeLeafId?: string },
) {
  // Both at once: a consumer that reaches the hub before the announcement announces the run itself,
  // so subscribers still hear of the prompt before a word of its reply.
  const [, queued] = await Promise.all([
    announcePrompt(env, prompt, run.incarnation, run.activeLeafId),
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
      parent_id: prompt.parentId,
      version_index: prompt.version.index,
      version_count: prompt.version.count,
      version_previous: prompt.version.previousId,
      version_next: prompt.version.nextId,
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

function idempotencyConflict(fingerprint: string, recorded: { fingerprint: string; response: string | null }) {
  if (recorded.fingerprint !== fingerprint) {
    return new AppError(409, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used for a different request");
  }
  return new AppError(
    409,
    "IDEMPOTENCY_KEY_IN_USE",
    "A request with this Idempotency-Key is still in progress",
    undefined,
    {
      "Retry-After": "1",
    },
  );
}

/**
 * A new prompt: sent after the chatroom's active leaf, or (`editOf`) a new version of an earlier prompt,
 * with the same parent. Either way it becomes the active leaf and is queued.
 */
export async function sendPrompt(
  env: Env,
  db: Database,
  input: { userId: string; chatroomId: string; content: string; idempotencyKey?: string; editOf?: string },
): Promise<PromptAnswer & { replayed?: true }> {
  const now = new Date();
  const day = utcDay(now);
  const { userId, chatroomId, content, idempotencyKey, editOf } = input;
  const prompt: NewPrompt = { id: uuidv7(now.getTime()), userId, chatroomId, content, day, now, editOf };
  if (idempotencyKey) {
    prompt.idempotency = {
      key: idempotencyKey,
      // A send's fingerprint is what it always was, so keys stored before edits existed still match.
      fingerprint: await (editOf
        ? fingerprintOf(chatroomId, "edit", editOf, content)
        : fingerprintOf(chatroomId, content)),
      notBefore: new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS),
    };
  }
  const recorded = await recordPrompt(db, prompt);
  if (recorded.kind === "not-found") throw notFound("Chatroom");
  if (recorded.kind === "message-not-found") throw notFound("Message");
  if (recorded.kind === "replay") {
    if (recorded.fingerprint !== prompt.idempotency?.fingerprint || !recorded.response) {
      throw idempotencyConflict(prompt.idempotency?.fingerprint ?? "", recorded);
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
    parentId: recorded.parentId,
    version: recorded.version,
    reply: null,
  };
  try {
    await enqueueOrFail(env, db, pending, { userId, day, incarnation: 0, activeLeafId: prompt.id });
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
    editOf
      ? "Edited prompt accepted; the reply will arrive asynchronously"
      : "Prompt accepted; the reply will arrive asynchronously",
  );
  if (prompt.idempotency)
    await saveIdempotentResponse(db, userId, prompt.idempotency.key, prompt.id, JSON.stringify(answer));
  return answer;
}

/**
 * A new run of an earlier prompt: `retry` for a failed or cancelled one (its failure note or partial
 * reply dropped), `regenerate` for a completed one (a new reply version; the active branch ends at it).
 */
export async function requeue(
  env: Env,
  db: Database,
  input: {
    userId: string;
    chatroomId: string;
    promptId: string;
    mode: "retry" | "regenerate";
    idempotencyKey?: string;
  },
): Promise<PromptAnswer & { replayed?: true }> {
  const now = new Date();
  const day = utcDay(now);
  const { userId, chatroomId, promptId, mode, idempotencyKey } = input;
  const idempotency = idempotencyKey
    ? {
        key: idempotencyKey,
        fingerprint: await fingerprintOf(chatroomId, mode, promptId),
        notBefore: new Date(now.getTime() - IDEMPOTENCY_WINDOW_MS),
      }
    : undefined;
  const retried = await requeuePrompt(db, { userId, chatroomId, promptId, day, now, mode, idempotency });
  if (retried.kind === "not-found") throw notFound("Message");
  if (retried.kind === "replay") {
    if (retried.fingerprint !== idempotency?.fingerprint || !retried.response) {
      throw idempotencyConflict(idempotency?.fingerprint ?? "", retried);
    }
    return { ...(JSON.parse(retried.response) as PromptAnswer), replayed: true };
  }
  if (retried.kind === "not-retryable") {
    if (mode === "retry") throw new AppError(409, "NOT_FAILED", "Only a failed or cancelled prompt can be retried");
    throw new AppError(
      409,
      "NOT_COMPLETED",
      retried.status === "pending"
        ? "This prompt is still being answered; cancel it first or wait for its reply"
        : "Only a completed prompt can be regenerated; a failed or cancelled one is retried with …/retry",
    );
  }
  if (retried.kind === "limited") {
    if (idempotency) await releaseIdempotencyKey(db, userId, idempotency.key, retried.grant);
    throw dailyLimitReached(now);
  }
  const pending: PromptDto = {
    id: promptId,
    chatroomId,
    role: "user",
    content: retried.prompt.content,
    status: "pending",
    createdAt: new Date(retried.prompt.created_at).toISOString(),
    parentId: retried.prompt.parent_id,
    version: versionOf(retried.prompt),
    reply: null,
  };
  try {
    await enqueueOrFail(env, db, pending, {
      userId,
      day,
      incarnation: retried.incarnation,
      activeLeafId: retried.leafMoved ? promptId : undefined,
    });
  } catch (err) {
    if (idempotency) await releaseIdempotencyKey(db, userId, idempotency.key, retried.grant);
    throw err;
  }
  const answer = accepted(
    pending,
    retried.pro,
    retried.used,
    now,
    mode === "retry" ? "Prompt queued again" : "Prompt queued for a new reply",
  );
  if (idempotency) await saveIdempotentResponse(db, userId, idempotency.key, retried.grant, JSON.stringify(answer));
  return answer;
}
