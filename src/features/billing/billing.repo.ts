import { eq, type Placeholder, type SQL, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { stripeEvents, subscriptions, users } from "../../db/schema";

/**
 * The one definition of Pro: a subscription that is active or trialing and whose current period has
 * not ended. Every tier decision (the prompt quota, /user/me, the subscription status) runs this
 * condition inside its own query, so they cannot disagree. A compiled query passes placeholders (now: as
 * epoch milliseconds).
 */
export function proCondition(userId: string | Placeholder | SQL, now: Date | Placeholder): SQL {
  const nowMs = now instanceof Date ? now.getTime() : now;
  return sql`EXISTS (SELECT 1 FROM ${subscriptions} WHERE ${subscriptions.userId} = ${userId} AND ${subscriptions.status} IN ('active', 'trialing') AND ${subscriptions.currentPeriodEnd} > ${nowMs})`;
}

export type BillingAccount = {
  pro: boolean;
  customerId: string | null;
  subscriptionId: string | null;
  status: string | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
};

/** The user's Stripe link and subscription state, and whether that makes them Pro now. */
export async function findBillingAccount(db: Database, userId: string, now: Date): Promise<BillingAccount> {
  const [row] = await db.all<{
    pro: number;
    customer_id: string | null;
    subscription_id: string | null;
    status: string | null;
    current_period_end: number | null;
    cancel_at_period_end: number | null;
  }>(sql`SELECT ${proCondition(userId, now)} AS pro, s.stripe_customer_id AS customer_id,
      s.stripe_subscription_id AS subscription_id, s.status, s.current_period_end, s.cancel_at_period_end
    FROM (SELECT 1) LEFT JOIN ${subscriptions} s ON s.user_id = ${userId}`);
  return {
    pro: row?.pro === 1,
    customerId: row?.customer_id ?? null,
    subscriptionId: row?.subscription_id ?? null,
    status: row?.status ?? null,
    currentPeriodEnd: row?.current_period_end ? new Date(row.current_period_end) : null,
    cancelAtPeriodEnd: row?.cancel_at_period_end === 1,
  };
}

/** Links the user to a Stripe customer once; a concurrent second link keeps the first. Returns the one kept. */
export async function saveCustomerId(db: Database, userId: string, customerId: string, now: Date): Promise<string> {
  const [row] = await db.all<{ stripe_customer_id: string }>(
    sql`INSERT INTO ${subscriptions} (user_id, stripe_customer_id, cancel_at_period_end, created_at, updated_at)
      VALUES (${userId}, ${customerId}, 0, ${now.getTime()}, ${now.getTime()})
      ON CONFLICT (user_id) DO UPDATE SET stripe_customer_id = coalesce(${subscriptions.stripeCustomerId}, excluded.stripe_customer_id)
      RETURNING stripe_customer_id`,
  );
  return row?.stripe_customer_id ?? customerId;
}

export async function isEventProcessed(db: Database, eventId: string): Promise<boolean> {
  const [row] = await db.select({ id: stripeEvents.id }).from(stripeEvents).where(eq(stripeEvents.id, eventId));
  return row !== undefined;
}

export type SubscriptionState = {
  /** The user the event names (checkout's client_reference_id, or metadata.userId). */
  userIdHint: string | null;
  customerId: string;
  subscriptionId: string;
  status: string;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
};

/**
 * Records the event and applies its subscription state in one batch. The state is written only if this
 * delivery recorded the event (a duplicate changes nothing), only if it is not older than the stored
 * state (events arrive out of order), and never lets an old subscription's events touch a newer one.
 */
export async function applyStripeEvent(
  db: Database,
  event: { id: string; type: string; createdAt: Date },
  state: SubscriptionState | null,
  now: Date,
) {
  const deliveryId = crypto.randomUUID();
  const statements = [
    sql`INSERT INTO ${stripeEvents} (id, type, delivery_id, processed_at)
      VALUES (${event.id}, ${event.type}, ${deliveryId}, ${now.getTime()}) ON CONFLICT DO NOTHING`,
  ];
  if (state) {
    const stateAt = event.createdAt.getTime();
    statements.push(sql`INSERT INTO ${subscriptions}
        (user_id, stripe_customer_id, stripe_subscription_id, status, current_period_end, cancel_at_period_end, state_at, created_at, updated_at)
      SELECT uid, ${state.customerId}, ${state.subscriptionId}, ${state.status}, ${state.currentPeriodEnd?.getTime() ?? null},
        ${state.cancelAtPeriodEnd ? 1 : 0}, ${stateAt}, ${now.getTime()}, ${now.getTime()}
      FROM (SELECT coalesce(
        (SELECT id FROM ${users} WHERE id = ${state.userIdHint}),
        (SELECT user_id FROM ${subscriptions} WHERE stripe_customer_id = ${state.customerId})) AS uid)
      WHERE uid IS NOT NULL
        AND EXISTS (SELECT 1 FROM ${stripeEvents} WHERE id = ${event.id} AND delivery_id = ${deliveryId})
      ON CONFLICT (user_id) DO UPDATE SET
        stripe_customer_id = excluded.stripe_customer_id,
        stripe_subscription_id = excluded.stripe_subscription_id,
        status = excluded.status,
        current_period_end = excluded.current_period_end,
        cancel_at_period_end = excluded.cancel_at_period_end,
        state_at = excluded.state_at,
        updated_at = excluded.updated_at
      WHERE (${subscriptions.stateAt} IS NULL
          OR excluded.state_at > ${subscriptions.stateAt}
          OR (excluded.state_at = ${subscriptions.stateAt} AND NOT (${subscriptions.status} = 'canceled' AND excluded.status <> 'canceled')))
        AND (${subscriptions.stripeSubscriptionId} IS NULL
          OR ${subscriptions.stripeSubscriptionId} = excluded.stripe_subscription_id
          OR excluded.status IN ('active', 'trialing'))`);
  }
  try {
    await db.$client.batch(statements.map((statement) => toStatement(db, statement)));
    return "applied" as const;
  } catch (err) {
    // A signed event that does not fit our data (say, a subscription naming one user on another user's
    // customer): nothing changes, the event is recorded as handled, so Stripe is answered 200 and does
    // not retry it for days. Anything else is our trouble and surfaces.
    if (!state || !/UNIQUE constraint failed|SQLITE_CONSTRAINT/i.test(String(err))) throw err;
    await db.$client.batch([toStatement(db, statements[0] as (typeof statements)[number])]);
    return "rejected" as const;
  }
}

/** Whether the user is Pro now (one read). */
export async function isPro(db: Database, userId: string): Promise<boolean> {
  const [row] = await db.all<{ pro: number }>(sql`SELECT ${proCondition(userId, new Date())} AS pro`);
  return row?.pro === 1;
}
