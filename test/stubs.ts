import { vi } from "vitest";
import { type GeminiUsage, geminiBlocked, geminiChunk, geminiSseEvent } from "../tools/stubs/gemini-chunks.mjs";

/** The host the Gemini SDK calls by default; tests point GEMINI_BASE_URL nowhere else. */
export const GEMINI_HOST = "generativelanguage.googleapis.com";

export type GeminiCall = {
  url: string;
  apiKey: string | null;
  body: { contents: { role: string; parts: { text: string }[] }[] };
  /** The SDK request's abort signal (aborted once the caller gives up on the reply). */
  signal: AbortSignal | null;
};
type GeminiAnswer = Response | "network-error";

const DEFAULT_USAGE: GeminiUsage = { promptTokenCount: 11, candidatesTokenCount: 7 };

const sseResponse = (body: BodyInit) =>
  new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });

/**
 * A streamGenerateContent?alt=sse answer shaped exactly like the Gemini REST API's, the whole `text`
 * in one event (finishReason STOP, usageMetadata).
 */
export function geminiText(text: string, usage: GeminiUsage = DEFAULT_USAGE) {
  return sseResponse(geminiSseEvent(geminiChunk(text, { finishReason: "STOP", usage })));
}

export type GeminiStreamOptions = {
  /** Milliseconds between two events (and before a drop); 0 by default. */
  gapMs?: number;
  /** After this many pieces the stream errors with TypeError("Network connection lost.") (a mid-stream drop). */
  dropAfter?: number;
  /** Carried by the last event, as usageMetadata (totalTokenCount added). */
  usage?: GeminiUsage;
  /** Carried by the last event; "STOP" by default. */
  finishReason?: string;
  /** Called right after piece `index` is enqueued, before the next one is produced. */
  onChunk?: (index: number) => void;
};

/**
 * A streamGenerateContent?alt=sse answer whose body produces one event per piece, `gapMs` apart, as
 * the consumer reads it (the Response itself is returned at once). The last event carries finishReason
 * and usageMetadata; with `dropAfter` the body errors instead, as when the connection drops mid-reply.
 */
export function geminiStream(pieces: string[], options: GeminiStreamOptions = {}) {
  const { gapMs = 0, dropAfter, usage = DEFAULT_USAGE, finishReason = "STOP", onChunk } = options;
  const encoder = new TextEncoder();
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent > 0 && gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      // Erroring in a later pull than the last enqueue, so the pieces already sent stay readable.
      if (sent === dropAfter) return controller.error(new TypeError("Network connection lost."));
      const index = sent++;
      const last = index >= pieces.length - 1 ? { finishReason, usage } : {};
      controller.enqueue(encoder.encode(geminiSseEvent(geminiChunk(pieces[index] ?? "", last))));
      onChunk?.(index);
      if (sent >= pieces.length && sent !== dropAfter) controller.close();
    },
  });
  return sseResponse(body);
}

export function geminiError(status: number, message: string, reason: string) {
  return new Response(JSON.stringify({ error: { code: status, message, status: reason } }), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

export const geminiOverloaded = () =>
  geminiError(503, "The model is overloaded. Please try again later.", "UNAVAILABLE");

/** A prompt refused by the safety filters, streamed as the API does: one event, no candidates. */
export function geminiPromptBlocked() {
  return sseResponse(geminiSseEvent(geminiBlocked({ promptTokenCount: 9 })));
}

/**
 * Replaces `fetch` so that only `host` answers, through `answer`; a request to any other host fails the
 * test. Every outbound HTTP stub in the tests goes through here.
 */
export function stubHost(host: string, answer: (request: Request, url: URL) => Promise<Response>) {
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.host !== host) throw new Error(`unexpected outbound request to ${url.host}`);
    return answer(request, url);
  });
}

/**
 * Replaces `fetch` for the Gemini host only; each call gets the next answer from `answers` (the last
 * one repeats). Any other host fails the test.
 */
export function stubGemini(...answers: (() => GeminiAnswer)[]) {
  const calls: GeminiCall[] = [];
  stubHost(GEMINI_HOST, async (request) => {
    calls.push({
      url: request.url,
      apiKey: request.headers.get("x-goog-api-key"),
      body: await request.json(),
      signal: request.signal ?? null,
    });
    const answer = (answers[calls.length - 1] ?? answers.at(-1))?.();
    if (!answer || answer === "network-error") throw new TypeError("Network connection lost.");
    return abortable(answer, request.signal);
  });
  return calls;
}

/**
 * `response` with a body that errors with the abort reason once `signal` aborts, as a real fetch's
 * does (the SDK then throws GoogleGenerativeAIAbortError from the stream it is reading).
 */
function abortable(response: Response, signal: AbortSignal | null | undefined) {
  if (!signal || !response.body) return response;
  const reader = response.body.getReader();
  let settled = false;
  const settle = (end: () => void) => {
    if (settled) return;
    settled = true;
    end();
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const abort = () => {
        settle(() => controller.error(signal.reason));
        reader.cancel(signal.reason).catch(() => {});
      };
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    },
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (settled) return;
        if (done) settle(() => controller.close());
        else controller.enqueue(value);
      } catch (error) {
        settle(() => controller.error(error));
      }
    },
    cancel(reason) {
      settled = true;
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

export type StripeCall = {
  method: string;
  host: string;
  protocol: string;
  path: string;
  form: URLSearchParams;
  authorization: string | null;
  idempotencyKey: string | null;
};

type StripeState = {
  subscriptions: Map<string, Record<string, unknown>>;
  customers: string[];
  fail?: { status: number; body: unknown };
};

/** A Stripe subscription object as the current API version returns it (period on the items). */
export function stripeSubscription(fields: {
  id: string;
  customer: string;
  status: string;
  periodEnd: number;
  cancelAtPeriodEnd?: boolean;
  userId?: string;
}) {
  return {
    id: fields.id,
    object: "subscription",
    customer: fields.customer,
    status: fields.status,
    cancel_at_period_end: fields.cancelAtPeriodEnd ?? false,
    created: fields.periodEnd - 30 * 86_400,
    items: {
      object: "list",
      data: [
        {
          id: `si_${fields.id}`,
          object: "subscription_item",
          current_period_start: fields.periodEnd - 30 * 86_400,
          current_period_end: fields.periodEnd,
          price: {
            id: "price_pro_30",
            object: "price",
            unit_amount: 3000,
            currency: "usd",
            recurring: { interval: "month" },
          },
          quantity: 1,
        },
      ],
      has_more: false,
      url: `/v1/subscription_items?subscription=${fields.id}`,
    },
    metadata: fields.userId ? { userId: fields.userId } : {},
    livemode: false,
  };
}

/**
 * Answers the Stripe endpoints the product calls, shaped like Stripe's API, for `api.stripe.com` or the
 * STRIPE_API_BASE host given. Any other host fails the test.
 */
export function stubStripe(options: { host?: string } = {}) {
  const calls: StripeCall[] = [];
  const state: StripeState = { subscriptions: new Map(), customers: [] };
  stubHost(options.host ?? "api.stripe.com", async (request, url) => {
    // Stripe's client posts application/x-www-form-urlencoded: read it as form bytes, not as text.
    const form = new URLSearchParams(
      request.method === "GET" ? url.search : new TextDecoder().decode(await request.arrayBuffer()),
    );
    calls.push({
      method: request.method,
      host: url.host,
      protocol: url.protocol,
      path: url.pathname,
      form,
      authorization: request.headers.get("Authorization"),
      idempotencyKey: request.headers.get("Idempotency-Key"),
    });
    const json = (body: unknown, status = 200) =>
      new Response(JSON.stringify(body), {
        status,
        headers: { "Content-Type": "application/json", "Request-Id": `req_${calls.length}` },
      });
    if (state.fail) return json(state.fail.body, state.fail.status);
    if (request.method === "POST" && url.pathname === "/v1/customers") {
      const id = `cus_test_${crypto.randomUUID().slice(0, 12)}`;
      state.customers.push(id);
      return json({
        id,
        object: "customer",
        phone: form.get("phone"),
        metadata: { userId: form.get("metadata[userId]") },
      });
    }
    if (request.method === "POST" && url.pathname === "/v1/checkout/sessions") {
      const id = `cs_test_${calls.length}`;
      return json({
        id,
        object: "checkout.session",
        mode: form.get("mode"),
        customer: form.get("customer"),
        client_reference_id: form.get("client_reference_id"),
        status: "open",
        url: `https://checkout.stripe.com/c/pay/${id}`,
        expires_at: Math.floor(Date.now() / 1000) + 86_400,
      });
    }
    if (request.method === "POST" && url.pathname === "/v1/billing_portal/sessions") {
      return json({
        id: "bps_test_1",
        object: "billing_portal.session",
        customer: form.get("customer"),
        url: "https://billing.stripe.com/p/session/test_1",
      });
    }
    const subscription = /^\/v1\/subscriptions\/([\w-]+)$/.exec(url.pathname);
    if ((request.method === "GET" || request.method === "DELETE") && subscription?.[1]) {
      const found = state.subscriptions.get(subscription[1]);
      if (found && request.method === "DELETE") {
        // Stripe's cancel: ended at once; cancelling an ended subscription is refused.
        if (found.status === "canceled") {
          return json(
            {
              error: {
                type: "invalid_request_error",
                message: `A canceled subscription can only update its cancellation_details and metadata.`,
              },
            },
            400,
          );
        }
        found.status = "canceled";
        found.canceled_at = Math.floor(Date.now() / 1000);
      }
      if (found) return json(found);
      return json(
        {
          error: {
            type: "invalid_request_error",
            code: "resource_missing",
            message: `No such subscription: '${subscription[1]}'`,
          },
        },
        404,
      );
    }
    return json(
      {
        error: {
          type: "invalid_request_error",
          message: `Unrecognized request URL (${request.method}: ${url.pathname})`,
        },
      },
      404,
    );
  });
  return { calls, state };
}
