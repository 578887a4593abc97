import type { Database } from "../../db/client";
import { AppError } from "../../lib/errors";
import { findBillingAccount } from "./billing.repo";
import { createStripe } from "./stripe";

/** Stripe statuses after which a subscription can never charge again. */
const ENDED = new Set(["canceled", "incomplete_expired"]);

const billingUnavailable = () =>
  new AppError(
    502,
    "BILLING_UNAVAILABLE",
    "The subscription could not be cancelled with the payment provider, so nothing was deleted; try again shortly",
  );

function logFailure(operation: string, subscriptionId: string, err: unknown) {
  const stripeError = err as Partial<{ type: string; code: string; statusCode: number }>;
  console.error(
    JSON.stringify({
      level: "error",
      message: "Cancelling a subscription failed",
      operation,
      subscriptionId,
      type: stripeError?.type,
      code: stripeError?.code,
      status: stripeError?.statusCode,
      error: String(err),
    }),
  );
}

/**
 * Ends the user's Stripe subscription now, through Stripe's API, unless it has already ended (it can then
 * never charge again). A subscription Stripe no longer knows, or reports ended, counts as cancelled.
 * Anything else (Stripe unreachable, an error, billing not configured while a subscription exists)
 * throws 502 BILLING_UNAVAILABLE: the caller stops before changing anything.
 */
export async function cancelSubscriptionNow(env: Env, db: Database, userId: string, now: Date): Promise<void> {
  const account = await findBillingAccount(db, userId, now);
  const subscriptionId = account.subscriptionId;
  if (!subscriptionId || (account.status !== null && ENDED.has(account.status))) return;
  let stripe: Awaited<ReturnType<typeof createStripe>>;
  try {
    stripe = await createStripe(env);
  } catch (err) {
    logFailure("configure", subscriptionId, err);
    throw billingUnavailable();
  }
  try {
    await stripe.subscriptions.cancel(subscriptionId);
    return;
  } catch (err) {
    logFailure("subscriptions.cancel", subscriptionId, err);
  }
  // Stripe refuses to cancel what has already ended: ask it what the subscription is now.
  try {
    const subscription = await stripe.subscriptions.retrieve(subscriptionId);
    if (ENDED.has(subscription.status)) return;
  } catch (err) {
    if ((err as { code?: string })?.code === "resource_missing") return;
    logFailure("subscriptions.retrieve", subscriptionId, err);
  }
  throw billingUnavailable();
}
