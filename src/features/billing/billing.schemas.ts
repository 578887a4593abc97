import { z } from "@hono/zod-openapi";
import { built, docsOnly, successSchema } from "../../lib/openapi";
import { UsageSchema } from "../messages";
import { TierSchema } from "../prompts";

export const ReturnUrlBodySchema = z
  .object({
    returnUrl: z
      .url({ protocol: /^https?$/, error: "returnUrl must be an absolute http(s) URL" })
      .max(2048)
      .optional()
      .openapi({
        example: "https://app.example.com/billing",
        description:
          "Where Stripe sends the user back; its origin must be listed in CHECKOUT_RETURN_ORIGINS (or be PUBLIC_BASE_URL's). " +
          "Checkout appends `checkout=success&session_id=…` or `checkout=cancel`. Without it, this API's own return pages.",
      }),
  })
  .openapi("ReturnUrlRequest");

export const CheckoutResponseSchema = docsOnly(() =>
  successSchema({
    url: z.string().openapi({
      description: "Stripe Checkout page to send the user to",
      example: "https://checkout.stripe.com/c/pay/cs_test_a1B2c3D4e5F6g7H8",
    }),
    sessionId: z.string().openapi({ example: "cs_test_a1B2c3D4e5F6g7H8" }),
  }).openapi("CheckoutSession"),
);

export const CheckoutReturnQuerySchema = z.object({
  session_id: z
    .string()
    .optional()
    .openapi({ param: { name: "session_id", in: "query" }, description: "The Checkout Session Stripe returns from" }),
});

export const PortalResponseSchema = docsOnly(() =>
  successSchema({
    url: z.string().openapi({
      description: "Stripe Billing Portal page to manage or cancel",
      example: "https://billing.stripe.com/p/session/test_YWNjdF8xUHJv",
    }),
  }),
);

export const SubscriptionSchema = docsOnly(() =>
  z
    .object({
      status: z.string().openapi({ example: "active", description: "Stripe's subscription status" }),
      currentPeriodEnd: z.string().nullable().openapi({ example: "2026-09-15T09:40:00.000Z" }),
      cancelAtPeriodEnd: z.boolean().openapi({ example: false }),
    })
    .openapi("Subscription"),
);

export const SubscriptionStatusResponseSchema = docsOnly(() =>
  successSchema({
    tier: built(TierSchema),
    subscription: z.union([built(SubscriptionSchema), z.null()]),
    usage: built(UsageSchema),
  }).openapi("SubscriptionStatus", {
    example: {
      success: true,
      message: "Subscription status",
      tier: "pro",
      subscription: { status: "active", currentPeriodEnd: "2026-09-15T09:40:00.000Z", cancelAtPeriodEnd: false },
      usage: { used: 12, limit: null, remaining: null, resetsAt: "2026-08-16T00:00:00.000Z" },
    },
  }),
);

export const WebhookReceivedSchema = docsOnly(() => successSchema({ received: z.literal(true) }));

/** The parts of a Stripe event this service reads; anything else in the payload is ignored. */
export const StripeEventSchema = z
  .object({
    id: z.string(),
    type: z.string(),
    created: z.number().int(),
    data: z.object({ object: z.record(z.string(), z.unknown()) }),
  })
  .openapi({
    description: "A Stripe event; only the fields listed are read",
    example: {
      id: "evt_1PqR2s3T4u5V6w7X",
      type: "checkout.session.completed",
      created: 1786786200,
      data: { object: { id: "cs_test_a1B2c3D4e5F6g7H8", object: "checkout.session", mode: "subscription" } },
    },
  });

/** The header is checked by the handler; a missing one is INVALID_SIGNATURE like any other bad signature. */
export const StripeSignatureHeaderSchema = z.object({
  "stripe-signature": z.string().openapi({
    description: "Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 hex>[,v1=…]",
    example: "t=1767225600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
  }),
});

const stripeId = z.union([z.string(), z.object({ id: z.string() }).transform((object) => object.id)]);

export const StripeSubscriptionSchema = z.object({
  id: z.string(),
  customer: stripeId,
  status: z.string(),
  cancel_at_period_end: z.boolean().default(false),
  // Current API versions keep the period on each item; older ones on the subscription itself.
  current_period_end: z.number().int().nullish(),
  items: z.object({ data: z.array(z.object({ current_period_end: z.number().int().nullish() })) }).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
});

export const StripeCheckoutSessionSchema = z.object({
  mode: z.string().nullish(),
  client_reference_id: z.string().nullish(),
  customer: stripeId.nullish(),
  subscription: stripeId.nullish(),
});

export const StripeInvoiceSchema = z.object({
  customer: stripeId.nullish(),
  // Current API versions: parent.subscription_details.subscription; older ones: subscription.
  subscription: stripeId.nullish(),
  parent: z.object({ subscription_details: z.object({ subscription: stripeId.nullish() }).nullish() }).nullish(),
});

export type StripeEvent = z.infer<typeof StripeEventSchema>;
export type StripeSubscription = z.infer<typeof StripeSubscriptionSchema>;
