import { type SQL, sql } from "drizzle-orm";
import { subscriptions } from "../../db/schema";

/**
 * The one definition of Pro: a subscription that is active or trialing and whose current period has
 * not ended. Every tier decision (the prompt quota, /user/me, the subscription status) runs this
 * condition inside its own query, so they cannot disagree.
 */
export function proCondition(userId: string, now: Date): SQL {
  return sql`EXISTS (SELECT 1 FROM ${subscriptions} WHERE ${subscriptions.userId} = ${userId} AND ${subscriptions.status} IN ('active', 'trialing') AND ${subscriptions.currentPeriodEnd} > ${now.getTime()})`;
}
