import { nextUtcMidnight } from "../../lib/time";

export const BASIC_DAILY_PROMPT_LIMIT = 5;

export type Tier = "basic" | "pro";

export function describeUsage(tier: Tier, used: number, now: Date) {
  const limit = tier === "pro" ? null : BASIC_DAILY_PROMPT_LIMIT;
  return {
    used,
    limit,
    remaining: limit === null ? null : Math.max(0, limit - used),
    resetsAt: nextUtcMidnight(now).toISOString(),
  };
}

/** The UTC calendar day a prompt counts against: "2026-11-24". */
export const utcDay = (now: Date) => now.toISOString().slice(0, 10);

/** The tier and today's usage as /user/me and the subscription status report them. */
export function tierAndUsage(quota: { pro: boolean; used: number }, now: Date) {
  const tier: Tier = quota.pro ? "pro" : "basic";
  return { tier, usage: describeUsage(tier, quota.used, now) };
}
