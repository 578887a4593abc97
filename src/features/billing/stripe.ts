import type Stripe from "stripe";
import { AppError } from "../../lib/errors";

export const billingNotConfigured = () =>
  new AppError(503, "BILLING_NOT_CONFIGURED", "Billing is not configured on this server");

/**
 * A Stripe client on the fetch HTTP client (Workers have no Node http), pointed at STRIPE_API_BASE
 * when it is set, e.g. a local stub that speaks Stripe's API. The SDK is loaded on first use: building
 * its hundreds of resource classes at startup would cost every isolate's first request, billing or not.
 */
export async function createStripe(env: Env): Promise<Stripe> {
  if (!env.STRIPE_SECRET_KEY) throw billingNotConfigured();
  const { default: Stripe } = await import("stripe");
  const base = env.STRIPE_API_BASE ? new URL(env.STRIPE_API_BASE) : undefined;
  const protocol = base?.protocol === "http:" ? "http" : "https";
  return new Stripe(env.STRIPE_SECRET_KEY, {
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: 1,
    timeout: 10_000,
    ...(base ? { host: base.hostname, port: base.port || (protocol === "http" ? 80 : 443), protocol } : {}),
  });
}

/** Runs a Stripe call; any failure becomes a 502 without Stripe's own text, which is logged instead. */
export async function callStripe<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    // Stripe's errors (StripeInvalidRequestError, StripeAPIError, …) carry these fields.
    const stripeError = err as Partial<{ type: string; code: string; statusCode: number }>;
    const detail = stripeError?.type?.startsWith("Stripe")
      ? { type: stripeError.type, code: stripeError.code, status: stripeError.statusCode }
      : {};
    console.error(
      JSON.stringify({ level: "error", message: "Stripe call failed", operation, ...detail, error: String(err) }),
    );
    throw new AppError(
      502,
      "PAYMENT_PROVIDER_ERROR",
      "The payment provider could not complete the request; try again shortly",
    );
  }
}
