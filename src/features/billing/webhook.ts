import type { z } from "zod";
import type { Database } from "../../db/client";
import { hmacSha256, timingSafeEqualText, toHex } from "../../lib/crypto";
import { validationFailed } from "../../lib/validate";
import { applyStripeEvent, isEventProcessed, type SubscriptionState } from "./billing.repo";
import {
  StripeCheckoutSessionSchema,
  type StripeEvent,
  StripeInvoiceSchema,
  type StripeSubscription,
  StripeSubscriptionSchema,
} from "./billing.schemas";
import { callStripe, createStripe } from "./stripe";

export const SIGNATURE_TOLERANCE_SECONDS = 300;

/**
 * Checks a `Stripe-Signature` header the way Stripe specifies: HMAC-SHA256 of `${t}.${rawBody}` with the
 * endpoint secret, hex-encoded; any `v1` may match (secrets are rotated with an overlap); `t` within
 * the tolerance either way. Every candidate is compared, in constant time, so timing reveals nothing.
 */
export async function verifyStripeSignature(
  rawBody: string,
  header: string | undefined,
  secret: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<boolean> {
  if (!header) return false;
  let timestamp: string | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const separator = part.indexOf("=");
    if (separator < 0) continue;
    const key = part.slice(0, separator).trim();
    const value = part.slice(separator + 1).trim();
    if (key === "t" && timestamp === undefined) timestamp = value;
    if (key === "v1" && value) signatures.push(value);
  }
  if (!timestamp || !/^\d{1,12}$/.test(timestamp) || signatures.length === 0) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) return false;
  const expected = toHex(await hmacSha256(secret, `${timestamp}.${rawBody}`));
  let matched = false;
  for (const signature of signatures) matched = timingSafeEqualText(signature.toLowerCase(), expected) || matched;
  return matched;
}

const SUBSCRIPTION_EVENTS = new Set([
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
]);
const LOOKUP_EVENTS = new Set(["checkout.session.completed", "invoice.paid", "invoice.payment_failed"]);

/** A signed payload that is not the shape Stripe documents is refused (400), not a crash. */
function parsePayload<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw validationFailed(result.error);
  return result.data;
}

export const isHandledEvent = (type: string) => SUBSCRIPTION_EVENTS.has(type) || LOOKUP_EVENTS.has(type);

function toState(subscription: StripeSubscription, userIdHint: string | null): SubscriptionState {
  const itemEnds = (subscription.items?.data ?? []).flatMap((item) =>
    item.current_period_end ? [item.current_period_end] : [],
  );
  const periodEnd = itemEnds.length > 0 ? Math.max(...itemEnds) : subscription.current_period_end;
  return {
    userIdHint: userIdHint ?? subscription.metadata?.userId ?? null,
    customerId: subscription.customer,
    subscriptionId: subscription.id,
    status: subscription.status,
    currentPeriodEnd: periodEnd ? new Date(periodEnd * 1000) : null,
    cancelAtPeriodEnd: subscription.cancel_at_period_end,
  };
}

async function fetchSubscriptionState(env: Env, subscriptionId: string, userIdHint: string | null) {
  const stripe = await createStripe(env);
  const subscription = await callStripe("subscriptions.retrieve", () => stripe.subscriptions.retrieve(subscriptionId));
  return toState(parsePayload(StripeSubscriptionSchema, subscription), userIdHint);
}

/**
 * The subscription state an event implies. Subscription events carry it; checkout and invoice events
 * only name the subscription, so its current state is fetched from Stripe (never derived from the
 * Checkout Session, whose expires_at is not the billing period).
 */
async function stateFor(env: Env, event: StripeEvent): Promise<SubscriptionState | null> {
  const object = event.data.object;
  if (SUBSCRIPTION_EVENTS.has(event.type)) {
    const subscription = parsePayload(StripeSubscriptionSchema, object);
    // A deleted subscription is over whatever status the payload still shows.
    return toState(
      event.type === "customer.subscription.deleted" ? { ...subscription, status: "canceled" } : subscription,
      null,
    );
  }
  if (event.type === "checkout.session.completed") {
    const session = parsePayload(StripeCheckoutSessionSchema, object);
    if (session.mode !== "subscription" || !session.subscription) return null;
    return fetchSubscriptionState(env, session.subscription, session.client_reference_id ?? null);
  }
  const invoice = parsePayload(StripeInvoiceSchema, object);
  const subscriptionId = invoice.parent?.subscription_details?.subscription ?? invoice.subscription;
  return subscriptionId ? fetchSubscriptionState(env, subscriptionId, null) : null;
}

/** Applies a verified event once. Unknown types are ignored; a repeat is a no-op. */
export async function handleStripeEvent(env: Env, db: Database, event: StripeEvent) {
  if (!isHandledEvent(event.type)) return;
  if (await isEventProcessed(db, event.id)) return;
  const state = await stateFor(env, event);
  const outcome = await applyStripeEvent(
    db,
    { id: event.id, type: event.type, createdAt: new Date(event.created * 1000) },
    state,
    new Date(),
  );
  if (outcome === "rejected") {
    console.warn(
      JSON.stringify({
        level: "warn",
        message: "Stripe event does not fit our data; recorded and not applied",
        eventId: event.id,
        type: event.type,
        customerId: state?.customerId,
        subscriptionId: state?.subscriptionId,
        userIdHint: state?.userIdHint,
      }),
    );
  }
}
