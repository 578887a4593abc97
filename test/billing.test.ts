import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  billingEnv,
  deliver,
  inDays,
  nowSeconds,
  stripeEvent,
  stripeSignature,
  subscriptionEvent,
  WEBHOOK_SECRET,
} from "./billing-helpers";
import { call, createChatroom, expectError, verifiedUser } from "./helpers";
import { expectLogged } from "./logs";
import { stripeSubscription, stubHost, stubStripe } from "./stubs";

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function tierOf(token: string) {
  const res = await call("GET", "/api/billing/subscription/status", { token, env: billingEnv() });
  return res.body as {
    tier: string;
    subscription: null | { status: string; currentPeriodEnd: string; cancelAtPeriodEnd: boolean };
  };
}

/** A verified user linked to a Stripe customer, as POST /subscribe/pro leaves them. */
async function customerUser() {
  const user = await verifiedUser();
  const stripe = stubStripe();
  const res = await call("POST", "/api/billing/subscribe/pro", { token: user.token, env: billingEnv() });
  expect(res.status).toBe(200);
  vi.restoreAllMocks();
  const [customerId = ""] = stripe.state.customers;
  return { ...user, customerId };
}

describe("POST /api/billing/webhook/stripe signature", () => {
  const unknownEvent = () => stripeEvent("balance.available", { object: "balance" });

  it("accepts a correctly signed event", async () => {
    const res = await deliver(unknownEvent());
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, received: true });
  });

  it.each(["/webhook/stripe", "/webhook/stripe/", "/api/billing/webhook/stripe/"])(
    "is served at the brief's %s too, checking the signature the same way",
    async (path) => {
      const accepted = await deliver(unknownEvent(), { path });
      expect(accepted.status).toBe(200);
      expect(accepted.body).toMatchObject({ success: true, received: true });
      const event = unknownEvent();
      const header = (await stripeSignature(JSON.stringify(event), "whsec_wrong")).header;
      expectError(await deliver(event, { path, header }), 400, "INVALID_SIGNATURE");
    },
  );

  it("accepts a timestamp up to exactly 300 s old or ahead (Stripe's tolerance)", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    for (const offset of [-300, -299, 299, 300]) {
      const event = unknownEvent();
      const payload = JSON.stringify(event);
      const { header } = await stripeSignature(payload, WEBHOOK_SECRET, nowSeconds() + offset);
      expect((await deliver(event, { header })).status, `t ${offset} s from now`).toBe(200);
    }
  });

  it("accepts a header with two v1 signatures when one is right (secret rotation)", async () => {
    const event = unknownEvent();
    const payload = JSON.stringify(event);
    const right = await stripeSignature(payload);
    const wrong = await stripeSignature(payload, "whsec_old_secret");
    const res = await deliver(event, { header: `t=${right.t},v1=${wrong.v1},v1=${right.v1}` });
    expect(res.status).toBe(200);
  });

  it.each([
    ["a wrong secret", async (payload: string) => (await stripeSignature(payload, "whsec_wrong")).header],
    [
      "a stale timestamp (301 s old)",
      async (payload: string) => (await stripeSignature(payload, WEBHOOK_SECRET, nowSeconds() - 301)).header,
    ],
    [
      "a future timestamp (301 s ahead)",
      async (payload: string) => (await stripeSignature(payload, WEBHOOK_SECRET, nowSeconds() + 301)).header,
    ],
    [
      "a tampered body",
      async (payload: string) => (await stripeSignature(payload.replace("balance", "balancf"))).header,
    ],
    ["only a v0 signature", async (payload: string) => (await stripeSignature(payload)).header.replace("v1=", "v0=")],
    ["garbage", async () => "definitely-not-a-signature"],
    ["an empty header", async () => ""],
  ])("refuses %s with 400 INVALID_SIGNATURE", async (_label, makeHeader) => {
    const event = unknownEvent();
    const payload = JSON.stringify(event);
    expectError(await deliver(event, { header: await makeHeader(payload) }), 400, "INVALID_SIGNATURE");
  });

  it("refuses a missing header", async () => {
    const res = await call("POST", "/api/billing/webhook/stripe", {
      rawBody: JSON.stringify(unknownEvent()),
      headers: { "Content-Type": "application/json" },
      env: billingEnv(),
    });
    expectError(res, 400, "INVALID_SIGNATURE");
    expect(res.body.message).toBe("The Stripe-Signature header is missing");
  });

  it("checks the signature before parsing JSON or touching the database", async () => {
    const brokenDb = {
      withSession() {
        return this;
      },
      getBookmark: () => null,
      prepare: () => {
        throw new Error("database touched");
      },
      batch: () => {
        throw new Error("database touched");
      },
    } as unknown as D1Database;
    const res = await deliver(null, { body: "{not json", header: "t=1,v1=abc", env: billingEnv({ DB: brokenDb }) });
    expectError(res, 400, "INVALID_SIGNATURE");
  });

  it("answers a signed body that is not JSON with 400 INVALID_JSON and one that is not an event with 400 VALIDATION_FAILED", async () => {
    expectError(await deliver(null, { body: "{not json" }), 400, "INVALID_JSON");
    expectError(await deliver({ hello: "world" }), 400, "VALIDATION_FAILED");
  });

  it("answers 503 BILLING_NOT_CONFIGURED without a webhook secret", async () => {
    expectError(
      await deliver(unknownEvent(), { env: billingEnv({ STRIPE_WEBHOOK_SECRET: "" }) }),
      503,
      "BILLING_NOT_CONFIGURED",
    );
  });

  it("accepts event payloads larger than the 64 KiB client limit", async () => {
    const event = stripeEvent("balance.available", { object: "balance", note: "x".repeat(100 * 1024) });
    expect((await deliver(event)).status).toBe(200);
  });
});

describe("webhook events", () => {
  it("ignores unknown event types with 200 and records nothing", async () => {
    const event = stripeEvent("payment_intent.created", { id: "pi_1", object: "payment_intent" });
    expect((await deliver(event)).status).toBe(200);
    const row = await env.DB.prepare("SELECT id FROM stripe_events WHERE id = ?").bind(event.id).first();
    expect(row).toBeNull();
  });

  it("links the subscription on checkout.session.completed, with the period end from the subscription items", async () => {
    const { token, user, customerId } = await customerUser();
    const stripe = stubStripe();
    const periodEnd = inDays(30);
    stripe.state.subscriptions.set(
      "sub_checkout",
      stripeSubscription({ id: "sub_checkout", customer: customerId, status: "active", periodEnd }),
    );
    const session = {
      id: "cs_test_x",
      object: "checkout.session",
      mode: "subscription",
      client_reference_id: user.id,
      customer: customerId,
      subscription: "sub_checkout",
      expires_at: inDays(1),
      status: "complete",
    };
    const event = stripeEvent("checkout.session.completed", session);
    expect((await deliver(event)).status).toBe(200);
    const status = await tierOf(token);
    expect(status.tier).toBe("pro");
    expect(status.subscription).toEqual({
      status: "active",
      currentPeriodEnd: new Date(periodEnd * 1000).toISOString(),
      cancelAtPeriodEnd: false,
    });
    expect(stripe.calls.filter((c) => c.path === "/v1/subscriptions/sub_checkout")).toHaveLength(1);

    // The same event again: 200, no second lookup, nothing changes.
    expect((await deliver(event)).status).toBe(200);
    expect(stripe.calls.filter((c) => c.path === "/v1/subscriptions/sub_checkout")).toHaveLength(1);
  });

  it("processes a duplicate event once even when the state moved on in between", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    const activated = subscriptionEvent(
      "customer.subscription.updated",
      { id: "sub_dup", customer: customerId, status: "active", periodEnd: inDays(30) },
      t - 10,
    );
    expect((await deliver(activated)).status).toBe(200);
    expect((await tierOf(token)).tier).toBe("pro");
    await env.DB.prepare("UPDATE subscriptions SET status = 'past_due' WHERE stripe_customer_id = ?")
      .bind(customerId)
      .run();
    expect((await deliver(activated)).status).toBe(200);
    expect((await tierOf(token)).subscription?.status).toBe("past_due");
  });

  it("never lets an older event overwrite newer state: deleted then an older updated", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    const fields = { id: "sub_order", customer: customerId, periodEnd: inDays(30) };
    expect(
      (await deliver(subscriptionEvent("customer.subscription.deleted", { ...fields, status: "canceled" }, t))).status,
    ).toBe(200);
    expect(
      (await deliver(subscriptionEvent("customer.subscription.updated", { ...fields, status: "active" }, t - 60)))
        .status,
    ).toBe(200);
    const status = await tierOf(token);
    expect(status.tier).toBe("basic");
    expect(status.subscription?.status).toBe("canceled");
  });

  it("never lets an older event overwrite newer state: updated then an older created", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    const fields = { id: "sub_order2", customer: customerId, periodEnd: inDays(30) };
    await deliver(subscriptionEvent("customer.subscription.updated", { ...fields, status: "active" }, t));
    await deliver(subscriptionEvent("customer.subscription.created", { ...fields, status: "incomplete" }, t - 5));
    expect((await tierOf(token)).tier).toBe("pro");
  });

  it("keeps a cancellation that happened in the same second as an update", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    const fields = { id: "sub_same", customer: customerId, periodEnd: inDays(30) };
    await deliver(subscriptionEvent("customer.subscription.deleted", { ...fields, status: "canceled" }, t));
    await deliver(subscriptionEvent("customer.subscription.updated", { ...fields, status: "active" }, t));
    expect((await tierOf(token)).tier).toBe("basic");
  });

  it("does not let the old subscription's cancellation end a newer subscription", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    await deliver(
      subscriptionEvent(
        "customer.subscription.created",
        { id: "sub_new", customer: customerId, status: "active", periodEnd: inDays(30) },
        t - 1,
      ),
    );
    await deliver(
      subscriptionEvent(
        "customer.subscription.deleted",
        { id: "sub_old", customer: customerId, status: "canceled", periodEnd: inDays(2) },
        t,
      ),
    );
    const status = await tierOf(token);
    expect(status.tier).toBe("pro");
    expect(status.subscription?.status).toBe("active");
  });

  it("records cancel_at_period_end and stays Pro until the period ends", async () => {
    const { token, customerId } = await customerUser();
    await deliver(
      subscriptionEvent("customer.subscription.updated", {
        id: "sub_cape",
        customer: customerId,
        status: "active",
        periodEnd: inDays(3),
        cancelAtPeriodEnd: true,
      }),
    );
    const status = await tierOf(token);
    expect(status.tier).toBe("pro");
    expect(status.subscription?.cancelAtPeriodEnd).toBe(true);
  });

  it("is Basic when the subscription is active but its period has ended", async () => {
    const { token, customerId } = await customerUser();
    await deliver(
      subscriptionEvent("customer.subscription.updated", {
        id: "sub_lapsed",
        customer: customerId,
        status: "active",
        periodEnd: nowSeconds() - 60,
      }),
    );
    expect((await tierOf(token)).tier).toBe("basic");
    expect((await call("GET", "/api/user/me", { token })).body.user.tier).toBe("basic");
  });

  it("follows invoice.payment_failed and invoice.paid by reading the subscription from Stripe", async () => {
    const { token, customerId } = await customerUser();
    const t = nowSeconds();
    await deliver(
      subscriptionEvent(
        "customer.subscription.created",
        { id: "sub_inv", customer: customerId, status: "active", periodEnd: inDays(30) },
        t - 100,
      ),
    );
    const stripe = stubStripe();
    stripe.state.subscriptions.set(
      "sub_inv",
      stripeSubscription({ id: "sub_inv", customer: customerId, status: "past_due", periodEnd: inDays(30) }),
    );
    const invoice = {
      id: "in_1",
      object: "invoice",
      customer: customerId,
      parent: { type: "subscription_details", subscription_details: { subscription: "sub_inv" } },
    };
    expect((await deliver(stripeEvent("invoice.payment_failed", invoice, t - 50))).status).toBe(200);
    expect((await tierOf(token)).tier).toBe("basic");
    const renewedUntil = inDays(60);
    stripe.state.subscriptions.set(
      "sub_inv",
      stripeSubscription({ id: "sub_inv", customer: customerId, status: "active", periodEnd: renewedUntil }),
    );
    expect((await deliver(stripeEvent("invoice.paid", invoice, t))).status).toBe(200);
    const status = await tierOf(token);
    expect(status.tier).toBe("pro");
    expect(status.subscription?.currentPeriodEnd).toBe(new Date(renewedUntil * 1000).toISOString());
  });

  it("answers 502 when Stripe cannot be reached for a lookup, so Stripe delivers the event again", async () => {
    const { customerId } = await customerUser();
    const stripe = stubStripe();
    stripe.state.fail = {
      status: 500,
      body: { error: { type: "api_error", message: "Internal error on Stripe's side" } },
    };
    const event = stripeEvent("invoice.paid", {
      id: "in_2",
      object: "invoice",
      customer: customerId,
      parent: { subscription_details: { subscription: "sub_x" } },
    });
    const res = await deliver(event);
    expectError(res, 502, "PAYMENT_PROVIDER_ERROR");
    expect(JSON.stringify(res.body)).not.toContain("Stripe's side");
    const row = await env.DB.prepare("SELECT id FROM stripe_events WHERE id = ?").bind(event.id).first();
    expect(row).toBeNull();
    expectLogged("error", "Stripe call failed", { operation: "subscriptions.retrieve", status: 500 });
  });
});

describe("POST /api/billing/subscribe/pro", () => {
  it("creates a subscription-mode Checkout Session for the Pro price and reuses the user's Stripe customer", async () => {
    const { token, user } = await verifiedUser();
    const stripe = stubStripe();
    const first = await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv() });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      success: true,
      url: expect.stringMatching(/^https:\/\/checkout\.stripe\.com\//),
      sessionId: expect.stringMatching(/^cs_test_/),
    });
    const second = await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv() });
    expect(second.status).toBe(200);

    const customerCalls = stripe.calls.filter((c) => c.path === "/v1/customers");
    expect(customerCalls).toHaveLength(1);
    expect(customerCalls[0]?.form.get("metadata[userId]")).toBe(user.id);
    expect(customerCalls[0]?.idempotencyKey).toBeTruthy();
    const sessions = stripe.calls.filter((c) => c.path === "/v1/checkout/sessions");
    expect(sessions).toHaveLength(2);
    for (const session of sessions) {
      expect(session.authorization).toBe("Bearer sk_test_fake");
      expect(Object.fromEntries(session.form)).toMatchObject({
        mode: "subscription",
        customer: stripe.state.customers[0],
        client_reference_id: user.id,
        "line_items[0][price]": "price_pro_30",
        "line_items[0][quantity]": "1",
        success_url: "http://localhost/api/billing/dummy/success?session_id={CHECKOUT_SESSION_ID}",
        cancel_url: "http://localhost/api/billing/dummy/cancel",
      });
    }
  });

  it("returns to a client's returnUrl only on an origin listed in CHECKOUT_RETURN_ORIGINS", async () => {
    const { token } = await verifiedUser();
    const stripe = stubStripe();
    const allowing = billingEnv({ CHECKOUT_RETURN_ORIGINS: "https://app.example.com, https://admin.example.com" });
    const ok = await call("POST", "/api/billing/subscribe/pro", {
      token,
      body: { returnUrl: "https://app.example.com/billing?tab=plan" },
      env: allowing,
    });
    expect(ok.status).toBe(200);
    const session = stripe.calls.find((c) => c.path === "/v1/checkout/sessions");
    expect(session?.form.get("success_url")).toBe(
      "https://app.example.com/billing?tab=plan&checkout=success&session_id={CHECKOUT_SESSION_ID}",
    );
    expect(session?.form.get("cancel_url")).toBe("https://app.example.com/billing?tab=plan&checkout=cancel");
    for (const returnUrl of [
      "https://evil.example/billing",
      "javascript:alert(1)",
      "/relative",
      "https://app.example.com.evil.io/",
    ]) {
      const refused = await call("POST", "/api/billing/subscribe/pro", { token, body: { returnUrl }, env: allowing });
      expectError(refused, 400, "VALIDATION_FAILED");
      expect(refused.body.error.details[0].path).toBe("returnUrl");
    }
    // No body at all, or a JSON content type with an empty body: this API's own return pages.
    const empty = await call("POST", "/api/billing/subscribe/pro", {
      token,
      rawBody: "",
      headers: { "Content-Type": "application/json" },
      env: allowing,
    });
    expect(empty.status).toBe(200);
  });

  it("sends the buyer back to PUBLIC_BASE_URL whatever Host the request names, and is 503 without it", async () => {
    const { token } = await verifiedUser();
    const stripe = stubStripe();
    const res = await call("POST", "/api/billing/subscribe/pro", {
      token,
      headers: { Host: "evil.example" },
      env: billingEnv({ PUBLIC_BASE_URL: "https://api.example.com/" }),
    });
    expect(res.status).toBe(200);
    const session = stripe.calls.find((c) => c.path === "/v1/checkout/sessions");
    expect(session?.form.get("success_url")).toBe(
      "https://api.example.com/api/billing/dummy/success?session_id={CHECKOUT_SESSION_ID}",
    );
    expect(session?.form.get("cancel_url")).toBe("https://api.example.com/api/billing/dummy/cancel");
    const unset = await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv({ PUBLIC_BASE_URL: "" }) });
    expectError(unset, 503, "BILLING_NOT_CONFIGURED");
  });

  it("talks to STRIPE_API_BASE when it is set (host, port and protocol)", async () => {
    const { token } = await verifiedUser();
    const stripe = stubStripe({ host: "127.0.0.1:12111" });
    const res = await call("POST", "/api/billing/subscribe/pro", {
      token,
      env: billingEnv({ STRIPE_API_BASE: "http://127.0.0.1:12111" }),
    });
    expect(res.status).toBe(200);
    expect(stripe.calls.map((c) => `${c.protocol}//${c.host}`)).toEqual([
      "http://127.0.0.1:12111",
      "http://127.0.0.1:12111",
    ]);
  });

  it("returns 409 ALREADY_PRO for a Pro user", async () => {
    const { token, customerId } = await customerUser();
    await deliver(
      subscriptionEvent("customer.subscription.created", {
        id: "sub_pro",
        customer: customerId,
        status: "active",
        periodEnd: inDays(30),
      }),
    );
    stubStripe();
    expectError(await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv() }), 409, "ALREADY_PRO");
  });

  it("returns 502 PAYMENT_PROVIDER_ERROR without Stripe's text when Stripe refuses", async () => {
    const { token } = await verifiedUser();
    const stripe = stubStripe();
    stripe.state.fail = {
      status: 400,
      body: { error: { type: "invalid_request_error", message: "No such price: 'price_pro_30'; secret sk_test_fake" } },
    };
    const res = await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv() });
    expectError(res, 502, "PAYMENT_PROVIDER_ERROR");
    expect(JSON.stringify(res.body)).not.toMatch(/price_pro_30|sk_test/);
    expectLogged("error", "Stripe call failed", {
      operation: "customers.create",
      type: "StripeInvalidRequestError",
      status: 400,
    });
  });

  it("returns 503 BILLING_NOT_CONFIGURED without Stripe keys, and 401 without a token", async () => {
    const { token } = await verifiedUser();
    expectError(
      await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv({ STRIPE_SECRET_KEY: "" }) }),
      503,
      "BILLING_NOT_CONFIGURED",
    );
    expectError(
      await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv({ STRIPE_PRO_PLAN_PRICE_ID: "" }) }),
      503,
      "BILLING_NOT_CONFIGURED",
    );
    expectError(await call("POST", "/api/billing/subscribe/pro", { env: billingEnv() }), 401, "UNAUTHORIZED");
  });
});

describe("a signed event that does not fit our data", () => {
  it("is recorded and answered 200, and changes nothing (Stripe would retry a 500 for days)", async () => {
    const a = await customerUser();
    const b = await verifiedUser();
    const periodEnd = inDays(30);
    const own = { id: "sub_owner_a", customer: a.customerId, periodEnd, userId: a.user.id };
    expect(
      (await deliver(subscriptionEvent("customer.subscription.created", { ...own, status: "active" }))).status,
    ).toBe(200);
    // The same customer, but the metadata names user B: B cannot take A's customer.
    const misfit = subscriptionEvent("customer.subscription.updated", {
      id: "sub_other",
      customer: a.customerId,
      status: "active",
      periodEnd: inDays(60),
      userId: b.user.id,
    });
    const res = await deliver(misfit);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, received: true });
    expect((await tierOf(a.token)).subscription).toMatchObject({ status: "active" });
    expect((await tierOf(b.token)).tier).toBe("basic");
    const recorded = await env.DB.prepare("SELECT type FROM stripe_events WHERE id = ?").bind(misfit.id).first();
    expect(recorded).toEqual({ type: "customer.subscription.updated" });
    expect((await deliver(misfit)).status).toBe(200);
    expectLogged("warn", "Stripe event does not fit our data; recorded and not applied", {
      eventId: misfit.id,
      subscriptionId: "sub_other",
      userIdHint: b.user.id,
    });
  });
});

describe("billing portal, status and return pages", () => {
  it("returns 404 NO_SUBSCRIPTION before any subscription and a portal URL after", async () => {
    const { token, customerId } = await customerUser();
    expectError(await call("POST", "/api/billing/portal", { token, env: billingEnv() }), 404, "NO_SUBSCRIPTION");
    await deliver(
      subscriptionEvent("customer.subscription.created", {
        id: "sub_portal",
        customer: customerId,
        status: "active",
        periodEnd: inDays(30),
      }),
    );
    const stripe = stubStripe();
    const res = await call("POST", "/api/billing/portal", { token, env: billingEnv() });
    expect(res.status).toBe(200);
    expect(res.body.url).toBe("https://billing.stripe.com/p/session/test_1");
    expect(stripe.calls[0]?.form.get("customer")).toBe(customerId);
    expect(stripe.calls[0]?.form.get("return_url")).toBe("http://localhost/api/billing/dummy/success");
    const allowing = billingEnv({ CHECKOUT_RETURN_ORIGINS: "https://app.example.com" });
    const back = await call("POST", "/api/billing/portal", {
      token,
      body: { returnUrl: "https://app.example.com/account" },
      env: allowing,
    });
    expect(back.status).toBe(200);
    expect(stripe.calls[1]?.form.get("return_url")).toBe("https://app.example.com/account");
    const refused = await call("POST", "/api/billing/portal", {
      token,
      body: { returnUrl: "https://elsewhere.example/account" },
      env: allowing,
    });
    expectError(refused, 400, "VALIDATION_FAILED");
  });

  it("reports Basic with no subscription and today's usage for a new user", async () => {
    const { token } = await verifiedUser();
    const res = await call("GET", "/api/billing/subscription/status", { token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tier: "basic", subscription: null, usage: { used: 0, limit: 5, remaining: 5 } });
  });

  it("serves the Checkout return pages", async () => {
    for (const path of ["/api/billing/dummy/success?session_id=cs_test_1", "/api/billing/dummy/cancel"]) {
      const res = await call("GET", path);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ success: true, message: expect.any(String) });
    }
  });
});

describe("the whole Pro lifecycle", () => {
  it("signup → subscribe → webhook → Pro → more than 5 prompts → deleted → Basic again", async () => {
    const { token, user } = await verifiedUser();
    const room = await createChatroom(token);
    const stripe = stubStripe();
    const checkout = await call("POST", "/api/billing/subscribe/pro", { token, env: billingEnv() });
    expect(checkout.status).toBe(200);
    const customerId = stripe.calls.find((c) => c.path === "/v1/checkout/sessions")?.form.get("customer") ?? "";
    const periodEnd = inDays(30);
    stripe.state.subscriptions.set(
      "sub_life",
      stripeSubscription({ id: "sub_life", customer: customerId, status: "active", periodEnd, userId: user.id }),
    );

    const t = nowSeconds();
    const completed = stripeEvent(
      "checkout.session.completed",
      {
        id: checkout.body.sessionId,
        object: "checkout.session",
        mode: "subscription",
        client_reference_id: user.id,
        customer: customerId,
        subscription: "sub_life",
        expires_at: inDays(1),
        status: "complete",
      },
      t - 30,
    );
    expect((await deliver(completed)).status).toBe(200);
    vi.restoreAllMocks();

    const me = await call("GET", "/api/user/me", { token });
    expect(me.body.user).toMatchObject({ tier: "pro", usage: { limit: null, remaining: null } });
    for (let i = 0; i < 7; i++) {
      const res = await call("POST", `/api/chatroom/${room.id}/message`, {
        token,
        body: { userMessage: `pro prompt ${i}` },
      });
      expect(res.status).toBe(202);
    }

    const deleted = subscriptionEvent(
      "customer.subscription.deleted",
      { id: "sub_life", customer: customerId, status: "canceled", periodEnd, userId: user.id },
      t,
    );
    expect((await deliver(deleted)).status).toBe(200);
    expect((await tierOf(token)).tier).toBe("basic");
    const after = await call("POST", `/api/chatroom/${room.id}/message`, {
      token,
      body: { userMessage: "back to basic" },
    });
    expectError(after, 429, "DAILY_LIMIT_REACHED");
    expect((await call("GET", "/api/user/me", { token })).body.user.usage).toMatchObject({
      used: 7,
      limit: 5,
      remaining: 0,
    });
  });
});

describe("rules pinned against mutation", () => {
  it("applies an event once when two deliveries of it race, even if the state moves on between them", async () => {
    const { token, customerId } = await customerUser();
    const subscription = stripeSubscription({
      id: "sub_race",
      customer: customerId,
      status: "active",
      periodEnd: inDays(30),
    });
    // Both deliveries pass the processed-event check before either records the event: their lookups
    // are held until both have arrived, then answered one at a time.
    const held: (() => void)[] = [];
    stubHost("api.stripe.com", async () => {
      await new Promise<void>((resolve) => held.push(resolve));
      return new Response(JSON.stringify(subscription), {
        headers: { "Content-Type": "application/json", "Request-Id": `req_${held.length}` },
      });
    });
    const event = stripeEvent("invoice.paid", {
      id: "in_race",
      object: "invoice",
      customer: customerId,
      parent: { type: "subscription_details", subscription_details: { subscription: "sub_race" } },
    });
    const deliveries = [deliver(event), deliver(event)];
    await vi.waitUntil(() => held.length === 2, { timeout: 3_000 });
    held[0]?.();
    expect((await Promise.race(deliveries)).status).toBe(200);
    expect((await tierOf(token)).subscription?.status).toBe("active");
    await env.DB.prepare("UPDATE subscriptions SET status = 'past_due' WHERE stripe_customer_id = ?")
      .bind(customerId)
      .run();
    held[1]?.();
    expect((await Promise.all(deliveries)).map((res) => res.status)).toEqual([200, 200]);
    expect((await tierOf(token)).subscription?.status).toBe("past_due");
    const recorded = await env.DB.prepare("SELECT count(*) AS n FROM stripe_events WHERE id = ?")
      .bind(event.id)
      .first();
    expect(recorded).toEqual({ n: 1 });
  });
});
