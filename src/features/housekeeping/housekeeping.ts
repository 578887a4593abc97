import { createDb } from "../../db/client";
import { settleAbandonedPrompt, utcDay } from "../prompts";
import { indexMissingWords } from "../search";
import { deleteExpiredRows, findStalePendingPrompts } from "./housekeeping.repo";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/**
 * A prompt pending this long is lost, not slow: its three deliveries and the dead-letter queue's take
 * minutes at most (back-off 5 s and 25 s, 30 s without a first chunk, a 45 s generation lease).
 */
export const STALE_PENDING_MS = 30 * MINUTE;
/** Prompts settled per run; a backlog is worked off over the following runs. */
const MAX_PROMPTS_PER_RUN = 200;

/**
 * The cron trigger's work (`[triggers] crons` in wrangler.toml): settle prompts left pending as failed
 * (quota unit given back, retryable), delete rows past their use in bounded batches, and add to the
 * search index the words of any recent message stored without them.
 */
export async function runHousekeeping(env: Env, now = new Date()) {
  const db = createDb(env.DB);
  let settled = 0;
  for (const promptId of await findStalePendingPrompts(
    db,
    new Date(now.getTime() - STALE_PENDING_MS),
    MAX_PROMPTS_PER_RUN,
  )) {
    if ((await settleAbandonedPrompt(env, promptId)) === "ack") settled++;
  }
  const deleted = await deleteExpiredRows(db, {
    otpsBefore: new Date(now.getTime() - 2 * 60 * MINUTE),
    idempotencyKeysBefore: new Date(now.getTime() - DAY),
    usageDaysBefore: utcDay(new Date(now.getTime() - DAY)),
    stripeEventsBefore: new Date(now.getTime() - 30 * DAY),
    authAttemptsBefore: new Date(now.getTime() - 60 * MINUTE),
  });
  const indexed = await indexMissingWords(db);
  const summary = { settledPendingPrompts: settled, deleted, indexedMessages: indexed };
  console.log(JSON.stringify({ level: "info", message: "housekeeping done", ...summary }));
  return summary;
}
