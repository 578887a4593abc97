// A local stand-in for the Stripe API endpoints this product calls, in Stripe's wire format
// (form-encoded requests, JSON objects back), so the real `stripe` SDK runs against it. Its Checkout
// "page" completes the payment at once and sends a signed checkout.session.completed webhook, the way
// Stripe would. Dev tool, not product code.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { listen } from "./listen.mjs";
import { signStripePayload } from "./stripe-signature.mjs";

const id = (prefix) => `${prefix}_${randomBytes(12).toString("hex")}`;
const now = () => Math.floor(Date.now() / 1000);

export function startStripeStub({ port = 0, host = "127.0.0.1", webhookUrl, webhookSecret } = {}) {
  const customers = new Map();
  const sessions = new Map();
  const subscriptions = new Map();

  const subscriptionObject = (subscription) => ({
    id: subscription.id,
    object: "subscription",
    customer: subscription.customer,
    status: subscription.status,
    cancel_at_period_end: false,
    created: subscription.created,
    items: {
      object: "list",
      data: [
        {
          id: `si_${subscription.id}`,
          object: "subscription_item",
          current_period_start: subscription.periodStart,
          current_period_end: subscription.periodEnd,
          price: { id: subscription.price, object: "price", unit_amount: 3000, currency: "usd" },
          quantity: 1,
        },
      ],
      has_more: false,
    },
    metadata: subscription.metadata,
  });

  async function sendWebhook(type, object) {
    if (!webhookUrl || !webhookSecret) return undefined;
    const event = {
      id: id("evt"),
      object: "event",
      api_version: "2026-10-28.endive",
      created: now(),
      type,
      livemode: false,
      data: { object },
    };
    const payload = JSON.stringify(event);
    const response = await fetch(webhookUrl, {
      method: "POST",
      headers: {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": (await signStripePayload(payload, webhookSecret)).header,
      },
      body: payload,
    });
    return response.status;
  }

  /** Pays a session: the subscription becomes active for 30 days and Stripe's webhook goes out. */
  async function completeCheckout(sessionId) {
    const session = sessions.get(sessionId);
    if (!session) return undefined;
    if (!session.subscription) {
      const subscription = {
        id: id("sub"),
        customer: session.customer,
        status: "active",
        created: now(),
        periodStart: now(),
        periodEnd: now() + 30 * 86_400,
        price: session.price,
        metadata: session.subscriptionMetadata,
      };
      subscriptions.set(subscription.id, subscription);
      session.subscription = subscription.id;
      session.status = "complete";
    }
    const webhookStatus = await sendWebhook("checkout.session.completed", { ...session, object: "checkout.session" });
    return { session, webhookStatus };
  }

  const send = (res, status, body) => {
    res.writeHead(status, { "Content-Type": "application/json", "Request-Id": id("req") });
    res.end(JSON.stringify(body));
  };
  // Stripe names a missing object with code resource_missing; an unknown URL has no code.
  const notFound = (res, message, code) =>
    send(res, 404, { error: { type: "invalid_request_error", message, ...(code ? { code } : {}) } });

  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => {
      raw += chunk;
    });
    req.on("end", async () => {
      const url = new URL(req.url, `http://${req.headers.host}`);
      const form = new URLSearchParams(raw);
      if (url.pathname.startsWith("/v1/") && !String(req.headers.authorization ?? "").startsWith("Bearer sk_")) {
        return send(res, 401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
      }
      if (req.method === "POST" && url.pathname === "/v1/customers") {
        const customer = {
          id: id("cus"),
          object: "customer",
          phone: form.get("phone"),
          email: form.get("email"),
          metadata: { userId: form.get("metadata[userId]") },
        };
        customers.set(customer.id, customer);
        return send(res, 200, customer);
      }
      if (req.method === "POST" && url.pathname === "/v1/checkout/sessions") {
        const sessionId = id("cs_test");
        const session = {
          id: sessionId,
          mode: form.get("mode"),
          customer: form.get("customer"),
          client_reference_id: form.get("client_reference_id"),
          price: form.get("line_items[0][price]"),
          success_url: form.get("success_url"),
          cancel_url: form.get("cancel_url"),
          subscriptionMetadata: { userId: form.get("subscription_data[metadata][userId]") },
          subscription: null,
          status: "open",
          expires_at: now() + 86_400,
          url: `http://${req.headers.host}/checkout/${sessionId}`,
        };
        sessions.set(sessionId, session);
        return send(res, 200, { ...session, object: "checkout.session" });
      }
      if (req.method === "POST" && url.pathname === "/v1/billing_portal/sessions") {
        return send(res, 200, {
          id: id("bps"),
          object: "billing_portal.session",
          customer: form.get("customer"),
          url: `http://${req.headers.host}/portal`,
        });
      }
      const subscriptionPath = /^\/v1\/subscriptions\/([\w-]+)$/.exec(url.pathname);
      if (req.method === "GET" && subscriptionPath) {
        const subscription = subscriptions.get(subscriptionPath[1]);
        return subscription
          ? send(res, 200, subscriptionObject(subscription))
          : notFound(res, `No such subscription: '${subscriptionPath[1]}'`, "resource_missing");
      }
      if (req.method === "DELETE" && subscriptionPath) {
        // Stripe's cancel-now: the subscription ends and customer.subscription.deleted goes out.
        const subscription = subscriptions.get(subscriptionPath[1]);
        if (!subscription) return notFound(res, `No such subscription: '${subscriptionPath[1]}'`, "resource_missing");
        subscription.status = "canceled";
        send(res, 200, subscriptionObject(subscription));
        await sendWebhook("customer.subscription.deleted", subscriptionObject(subscription));
        return undefined;
      }
      const checkoutPage = /^\/checkout\/([\w-]+)$/.exec(url.pathname);
      if (req.method === "GET" && checkoutPage) {
        const result = await completeCheckout(checkoutPage[1]);
        if (!result) return notFound(res, "No such checkout session");
        const target = result.session.success_url?.replace("{CHECKOUT_SESSION_ID}", result.session.id);
        res.writeHead(303, { Location: target ?? "/" });
        return res.end();
      }
      if (req.method === "GET" && url.pathname === "/portal") {
        return send(res, 200, { message: "Stripe Billing Portal (offline stub)" });
      }
      return notFound(res, `Unrecognized request URL (${req.method}: ${url.pathname})`);
    });
  });

  return listen(server, port, host);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const stub = await startStripeStub({
    port: Number(process.env.PORT ?? 12111),
    webhookUrl: process.env.WEBHOOK_URL ?? "http://127.0.0.1:8787/api/billing/webhook/stripe",
    webhookSecret: process.env.WEBHOOK_SECRET ?? "whsec_offline_stub",
  });
  console.log(`Stripe stub on ${stub.url}`);
}
