import { env } from "cloudflare:test";
import { signStripePayload } from "../tools/stubs/stripe-signature.mjs";
import { call } from "./helpers";
import { stripeSubscription } from "./stubs";

export const WEBHOOK_SECRET = "whsec_test_0123456789abcdef";
export const billingEnv = (overrides: Partial<Env> = {}): Env => ({
  ...env,
  STRIPE_SECRET_KEY: "sk_test_fake",
  STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
  STRIPE_PRO_PLAN_PRICE_ID: "price_pro_30",
  ...overrides,
});

export const nowSeconds = () => Math.floor(Date.now() / 1000);
export const inDays = (days: number) => nowSeconds() + days * 86_400;

/** Exactly what Stripe sends, signed with this suite's endpoint secret unless told otherwise. */
export const stripeSignature = (payload: string, secret = WEBHOOK_SECRET, t = nowSeconds()) =>
  signStripePayload(payload, secret, t);

let eventCounter = 0;
export function stripeEvent(type: string, object: Record<string, unknown>, created = nowSeconds()) {
  eventCounter += 1;
  return {
    id: `evt_test_${Date.now()}_${eventCounter}`,
    object: "event",
    api_version: "2026-10-28.endive",
    created,
    type,
    livemode: false,
    pending_webhooks: 1,
    data: { object },
  };
}

export async function deliver(
  event: unknown,
  options: { header?: string; env?: Env; body?: string; path?: string } = {},
) {
  const payload = options.body ?? JSON.stringify(event);
  const header = options.header ?? (await stripeSignature(payload)).header;
  return call("POST", options.path ?? "/api/billing/webhook/stripe", {
    rawBody: payload,
    headers: { "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header },
    env: options.env ?? billingEnv(),
  });
}

export const subscriptionEvent = (type: string, fields: Parameters<typeof stripeSubscription>[0], created?: number) =>
  stripeEvent(type, stripeSubscription(fields), created);
