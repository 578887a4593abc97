import type { Database } from "../../db/client";
import { AppError } from "../../lib/errors";
import { findUserById } from "../auth";
import { findBillingAccount, saveCustomerId } from "./billing.repo";
import { billingNotConfigured, callStripe, createStripe } from "./stripe";

/**
 * Where Stripe sends the buyer back: the `PUBLIC_BASE_URL` variable, never the request's Host header
 * (which a client can set to anything). Billing is not configured without it.
 */
export function publicBaseUrl(env: Env): string {
  const base = env.PUBLIC_BASE_URL?.trim().replace(/\/+$/, "");
  if (!base || !URL.canParse(base)) throw billingNotConfigured();
  return base;
}

/** The return URL a client asked for, if its origin is allowed; 400 otherwise. */
export function allowedReturnUrl(env: Env, returnUrl: string | undefined): URL | undefined {
  if (returnUrl === undefined) return undefined;
  const url = new URL(returnUrl);
  const allowed = new Set(
    (env.CHECKOUT_RETURN_ORIGINS ?? "")
      .split(",")
      .map((origin) => origin.trim().replace(/\/+$/, ""))
      .filter(Boolean),
  );
  allowed.add(new URL(publicBaseUrl(env)).origin);
  if (!allowed.has(url.origin)) {
    throw new AppError(400, "VALIDATION_FAILED", "Request validation failed", [
      { path: "returnUrl", message: `returnUrl's origin ${url.origin} is not one this server returns to` },
    ]);
  }
  return url;
}

const withParams = (url: URL, params: string) => `${url.href}${url.search ? "&" : "?"}${params}`;

/**
 * A Stripe Checkout Session in subscription mode for the Pro price. The user's Stripe customer is
 * created once and reused; Checkout returns to this API's dummy pages under PUBLIC_BASE_URL.
 */
export async function startProCheckout(env: Env, db: Database, userId: string, returnUrl?: URL) {
  const now = new Date();
  const account = await findBillingAccount(db, userId, now);
  if (account.pro) throw new AppError(409, "ALREADY_PRO", "You are already on Pro");
  if (!env.STRIPE_PRO_PLAN_PRICE_ID) throw billingNotConfigured();
  const origin = publicBaseUrl(env);
  const stripe = await createStripe(env);
  let customerId = account.customerId;
  if (!customerId) {
    const user = await findUserById(db, userId);
    const customer = await callStripe("customers.create", () =>
      stripe.customers.create(
        {
          phone: user?.phoneNumber,
          email: user?.email ?? undefined,
          name: user?.fullName ?? undefined,
          metadata: { userId },
        },
        // Concurrent first subscribes get the same customer back from Stripe.
        { idempotencyKey: `customer-for-user-${userId}` },
      ),
    );
    customerId = await saveCustomerId(db, userId, customer.id, now);
  }
  const session = await callStripe("checkout.sessions.create", () =>
    stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customerId,
      client_reference_id: userId,
      line_items: [{ price: env.STRIPE_PRO_PLAN_PRICE_ID, quantity: 1 }],
      subscription_data: { metadata: { userId } },
      success_url: returnUrl
        ? withParams(returnUrl, "checkout=success&session_id={CHECKOUT_SESSION_ID}")
        : `${origin}/api/billing/dummy/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: returnUrl ? withParams(returnUrl, "checkout=cancel") : `${origin}/api/billing/dummy/cancel`,
    }),
  );
  if (!session.url) throw new AppError(502, "PAYMENT_PROVIDER_ERROR", "The payment provider returned no checkout page");
  return { url: session.url, sessionId: session.id };
}
