import type { Database } from "../../db/client";
import { readQuotaState } from "./prompts.repo";
import { tierAndUsage, utcDay } from "./quota";

/** The user's tier and today's usage, read from D1, as the subscription status reports them. */
export async function currentUsage(db: Database, userId: string, now: Date) {
  return tierAndUsage(await readQuotaState(db, userId, utcDay(now), now), now);
}
