import { createRoute } from "@hono/zod-openapi";
import { readBodyAtMost } from "../../lib/body";
import { AppError, invalidJson } from "../../lib/errors";
import {
  authErrors,
  bearerAuth,
  bodyErrors,
  errorResponses,
  jsonBody,
  jsonResponse,
  MessageOnlySchema,
} from "../../lib/openapi";
import { toIso } from "../../lib/time";
import { createRouter, validationFailed } from "../../lib/validate";
import { emptyBodyIsNone } from "../../middleware/json-body";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { currentUsage } from "../prompts";
import { findBillingAccount } from "./billing.repo";
import {
  CheckoutResponseSchema,
  CheckoutReturnQuerySchema,
  PortalResponseSchema,
  ReturnUrlBodySchema,
  StripeEventSchema,
  StripeSignatureHeaderSchema,
  SubscriptionStatusResponseSchema,
  WebhookReceivedSchema,
} from "./billing.schemas";
import { allowedReturnUrl, publicBaseUrl, startProCheckout } from "./checkout";
import { billingNotConfigured, callStripe, createStripe } from "./stripe";
import { handleStripeEvent, verifyStripeSignature } from "./webhook";

const stripeErrors = {
  502: "PAYMENT_PROVIDER_ERROR: Stripe did not answer as expected",
  503: "BILLING_NOT_CONFIGURED: Stripe keys or the Pro price are not set on this server",
} as const;

export const billingRoutes = createRouter<AppEnv>();

billingRoutes.openapi(
  createRoute({
    method: "post",
    path: "/subscribe/pro",
    operationId: "subscribePro",
    tags: ["Billing"],
    summary: "Start a Stripe Checkout for Pro ($30, subscription)",
    description:
      "Creates (once) and reuses the user's Stripe customer, then a Checkout Session in subscription mode with " +
      "client_reference_id = user id. Open `url` in a browser; Stripe returns to `returnUrl` when given (its origin must be in " +
      "CHECKOUT_RETURN_ORIGINS), else to /api/billing/dummy/success or /cancel under PUBLIC_BASE_URL. The body is optional.",
    security: bearerAuth,
    middleware: [requireAuth, emptyBodyIsNone] as const,
    request: { body: { ...jsonBody(ReturnUrlBodySchema), required: false } },
    responses: {
      200: jsonResponse(CheckoutResponseSchema, "Checkout Session created"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        400: "VALIDATION_FAILED: returnUrl is not an http(s) URL on an allowed origin",
        409: "ALREADY_PRO",
        ...stripeErrors,
      }),
    },
  }),
  async (c) => {
    const returnUrl = allowedReturnUrl(c.env, c.req.valid("json").returnUrl);
    const checkout = await startProCheckout(c.env, c.get("db"), c.get("userId"), returnUrl);
    return c.json({ success: true as const, message: "Checkout session created", ...checkout }, 200);
  },
);

billingRoutes.openapi(
  createRoute({
    method: "post",
    path: "/portal",
    operationId: "openBillingPortal",
    tags: ["Billing"],
    summary: "Open the Stripe Billing Portal to manage or cancel Pro",
    description:
      "Returns to `returnUrl` when given (its origin must be in CHECKOUT_RETURN_ORIGINS), else to /api/billing/dummy/success under PUBLIC_BASE_URL. The body is optional.",
    security: bearerAuth,
    middleware: [requireAuth, emptyBodyIsNone] as const,
    request: { body: { ...jsonBody(ReturnUrlBodySchema), required: false } },
    responses: {
      200: jsonResponse(PortalResponseSchema, "Portal session created"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        400: "VALIDATION_FAILED: returnUrl is not an http(s) URL on an allowed origin",
        404: "NO_SUBSCRIPTION: the user has never subscribed",
        ...stripeErrors,
      }),
    },
  }),
  async (c) => {
    const returnUrl = allowedReturnUrl(c.env, c.req.valid("json").returnUrl);
    const account = await findBillingAccount(c.get("db"), c.get("userId"), new Date());
    if (!account.customerId || !account.subscriptionId) {
      throw new AppError(404, "NO_SUBSCRIPTION", "You have no subscription to manage");
    }
    const stripe = await createStripe(c.env);
    const customer = account.customerId;
    const portal = await callStripe("billingPortal.sessions.create", () =>
      stripe.billingPortal.sessions.create({
        customer,
        return_url: returnUrl?.href ?? `${publicBaseUrl(c.env)}/api/billing/dummy/success`,
      }),
    );
    return c.json({ success: true as const, message: "Billing portal session created", url: portal.url }, 200);
  },
);

billingRoutes.openapi(
  createRoute({
    method: "get",
    path: "/subscription/status",
    operationId: "getSubscriptionStatus",
    tags: ["Billing"],
    summary: "Tier, subscription and today's usage",
    description: "Pro means a subscription that is active or trialing whose current period has not ended.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: { 200: jsonResponse(SubscriptionStatusResponseSchema, "Current status"), ...errorResponses(authErrors) },
  }),
  async (c) => {
    const now = new Date();
    const [account, { tier, usage }] = await Promise.all([
      findBillingAccount(c.get("db"), c.get("userId"), now),
      currentUsage(c.get("db"), c.get("userId"), now),
    ]);
    const subscription =
      account.subscriptionId && account.status
        ? {
            status: account.status,
            currentPeriodEnd: toIso(account.currentPeriodEnd),
            cancelAtPeriodEnd: account.cancelAtPeriodEnd,
          }
        : null;
    return c.json(
      {
        success: true as const,
        message: "Subscription status",
        tier,
        subscription,
        usage,
      },
      200,
    );
  },
);

for (const [path, operationId, message, query] of [
  [
    "/dummy/success",
    "checkoutSuccessPage",
    "Payment successful! Your Pro plan is activated as soon as Stripe confirms it.",
    CheckoutReturnQuerySchema,
  ],
  ["/dummy/cancel", "checkoutCancelPage", "Payment cancelled. You are still on the Basic plan.", undefined],
] as const) {
  billingRoutes.openapi(
    createRoute({
      method: "get",
      path,
      operationId,
      tags: ["Billing"],
      summary: `Stripe Checkout's return page (${path.split("/").pop()})`,
      security: [],
      request: query ? { query } : {},
      responses: { 200: jsonResponse(MessageOnlySchema, "A note for the browser Stripe sent back") },
    }),
    (c) => c.json({ success: true as const, message }, 200),
  );
}

/** Stripe's event payloads can exceed the 64 KiB that client requests get. */
export const WEBHOOK_MAX_BYTES = 1024 * 1024;

/**
 * Mounted ahead of the JSON body guard: the signature is checked on the raw bytes before any JSON
 * parsing or database work.
 */
export const stripeWebhookRoutes = createRouter<AppEnv>();
stripeWebhookRoutes.openAPIRegistry.register("StripeEvent", StripeEventSchema);

const invalidSignature = () =>
  new AppError(400, "INVALID_SIGNATURE", "The Stripe-Signature header does not match this body");
const missingSignature = () => new AppError(400, "INVALID_SIGNATURE", "The Stripe-Signature header is missing");

stripeWebhookRoutes.openapi(
  createRoute({
    method: "post",
    path: "/stripe",
    operationId: "receiveStripeWebhook",
    tags: ["Billing"],
    summary: "Stripe webhook (signed with STRIPE_WEBHOOK_SECRET)",
    description:
      "Verifies Stripe-Signature (HMAC-SHA256 of the timestamp, a dot and the raw body; any v1; 300 s tolerance) before reading the event. " +
      "Handles checkout.session.completed, customer.subscription.created|updated|deleted, invoice.paid and " +
      "invoice.payment_failed once per event id; older events never overwrite newer state; other types are acknowledged and ignored. " +
      "Bodies up to 1 MiB.",
    security: [],
    request: {
      headers: StripeSignatureHeaderSchema,
      body: {
        // A reference, not the zod schema, so no validator parses the body before its signature is checked.
        content: { "application/json": { schema: { $ref: "#/components/schemas/StripeEvent" } } },
        required: true,
      },
    },
    responses: {
      200: jsonResponse(WebhookReceivedSchema, "Event received"),
      ...errorResponses({
        400: "INVALID_SIGNATURE, or a signed body that is not a Stripe event",
        413: "PAYLOAD_TOO_LARGE: over 1 MiB",
        ...stripeErrors,
      }),
    },
  }),
  async (c) => {
    const secret = c.env.STRIPE_WEBHOOK_SECRET;
    if (!secret) throw billingNotConfigured();
    const bytes = await readBodyAtMost(c.req.raw, WEBHOOK_MAX_BYTES);
    const rawBody = new TextDecoder().decode(bytes);
    const signature = c.req.header("Stripe-Signature");
    if (!signature) throw missingSignature();
    if (!(await verifyStripeSignature(rawBody, signature, secret))) throw invalidSignature();
    let payload: unknown;
    try {
      payload = JSON.parse(rawBody);
    } catch {
      throw invalidJson();
    }
    const event = StripeEventSchema.safeParse(payload);
    if (!event.success) throw validationFailed(event.error);
    await handleStripeEvent(c.env, c.get("db"), event.data);
    return c.json({ success: true as const, message: "Webhook received", received: true as const }, 200);
  },
  (result, c) => {
    if (result.success) return undefined;
    if (!c.req.header("Stripe-Signature")) throw missingSignature();
    throw invalidSignature();
  },
);
