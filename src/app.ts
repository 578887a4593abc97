import { createRoute, type OpenAPIObjectConfigure } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import { authRoutes } from "./features/auth/auth.routes";
import { billingRoutes, stripeWebhookRoutes } from "./features/billing/billing.routes";
import { chatroomRoutes } from "./features/chatrooms/chatrooms.routes";
import { liveRoutes } from "./features/live/live.routes";
import { modelRoutes } from "./features/models/models.routes";
import { playgroundRoutes } from "./features/playground/playground.routes";
import { promptRoutes } from "./features/prompts/prompts.routes";
import { searchRoutes } from "./features/search/search.routes";
import { sharedRoutes, sharePage, shareRoutes } from "./features/shares/shares.routes";
import { userRoutes } from "./features/users/users.routes";
import { renderApiReference } from "./lib/api-reference";
import { canonicalPath } from "./lib/canonical-path";
import { handleError, handleNotFound } from "./lib/errors";
import { buildDocsOnlySchemas, jsonResponse, MessageOnlySchema } from "./lib/openapi";
import { createRouter } from "./lib/validate";
import { corsFromEnv } from "./middleware/cors";
import { d1Session } from "./middleware/d1-session";
import { jsonBody } from "./middleware/json-body";
import { requestLog } from "./middleware/request-log";
import { requireAuth } from "./middleware/require-auth";
import { routeGuard } from "./middleware/route-guard";
import type { AppEnv } from "./types";

export const openApiConfig: OpenAPIObjectConfigure<AppEnv, "/openapi.json"> = {
  openapi: "3.1.0",
  info: {
    title: "Gemini Backend Clone API",
    version: "1.0.0",
    description:
      "Phone + OTP auth, chatrooms and asynchronous Gemini replies on Cloudflare Workers. " +
      "Every error has the shape {success:false, message, error:{code, details?, requestId?}}. " +
      "A query parameter an operation does not list is a 400 VALIDATION_FAILED, never silently ignored. " +
      "A listed path asked with a method it does not serve is a 405 METHOD_NOT_ALLOWED whose Allow header lists the ones it does; " +
      "HEAD is served wherever GET is, and OPTIONS (CORS preflight) everywhere. " +
      "Every answer carries an x-d1-bookmark header (a D1 Sessions bookmark); a client that sends back the last one it got lets " +
      "its reads be served by a nearby D1 replica that has caught up to it, so it still reads its own writes. Without it, a request starts at the primary. " +
      "This document lists the canonical /api paths. The original assignment's endpoint table works verbatim too: " +
      "every path is also served without the /api prefix (/auth/signup, /user/me, /chatroom/{id}/message, …), " +
      "POST /subscribe/pro, GET /subscription/status and POST /webhook/stripe (signature checked the same) reach " +
      "the /api/billing/… operations, and a trailing slash is ignored.",
  },
  servers: [{ url: "/", description: "This Worker: paths are relative to where this document is served" }],
  tags: [
    { name: "Health", description: "Whether the Worker is up." },
    { name: "Auth", description: "Sign-up, phone verification with an OTP, tokens and passwords." },
    { name: "User", description: "The signed-in user, their tier and today's prompt usage." },
    { name: "Chatrooms", description: "Your chatrooms; nobody else's are ever visible." },
    { name: "Messages", description: "Prompts and Gemini's replies: 5 prompts a UTC day on Basic, unlimited on Pro." },
    {
      name: "Live replies",
      description:
        "Replies streamed as they are written (Server-Sent Events, or WebSocket on /events), resumable with Last-Event-ID, and cancellable.",
    },
    { name: "Billing", description: "Pro through Stripe Checkout and the Billing Portal; Stripe's signed webhook." },
    {
      name: "Your data",
      description: "Search everything you wrote, see your usage, and share a read-only link to a conversation.",
    },
  ],
};

/** The OpenAPI document of an app made by createApp, its docs-only response schemas built first. */
export function openApiDocumentOf(app: ReturnType<typeof createRouter<AppEnv>>) {
  buildDocsOnlySchemas(app);
  return app.getOpenAPI31Document(openApiConfig as never);
}

export function createApp() {
  // Routing uses the canonical path, so the brief's paths without /api (and with a trailing slash) reach
  // the same routes, middleware and guards, including the webhook mounted before the body guard.
  const app = createRouter<AppEnv>({ getPath: canonicalPath });

  app.use("*", requestId(), requestLog, secureHeaders(), corsFromEnv, routeGuard(app), d1Session);
  // Registered before the JSON body guard, so Hono runs it first and the guard never sees its body:
  // the webhook verifies Stripe's signature on the raw bytes before anything parses them.
  app.route("/api/billing/webhook", stripeWebhookRoutes);
  app.use("*", jsonBody);

  app.openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "getHealth",
      tags: ["Health"],
      summary: "Health check",
      security: [],
      responses: { 200: jsonResponse(MessageOnlySchema, "The Worker is up") },
    }),
    (c) => c.json({ success: true as const, message: "Backend is LIVE" }, 200),
  );

  app.route("/api/auth", authRoutes);
  app.route("/api/user", userRoutes);
  app.route("/api/models", modelRoutes);
  app.route("/api/search", searchRoutes);
  // Rooms, their messages and live replies: every path under /api/chatroom needs a token (the two
  // stream GETs take a stream ticket instead), checked once before whichever router serves it.
  app.use("/api/chatroom/*", requireAuth);
  app.route("/api/chatroom", chatroomRoutes);
  app.route("/api/chatroom", promptRoutes);
  app.route("/api/chatroom", liveRoutes);
  app.route("/api/chatroom", shareRoutes);
  app.route("/api/shared", sharedRoutes);
  app.route("/api/billing", billingRoutes);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "The authToken from verify-otp, login or change-password",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "streamTicket", {
    type: "apiKey",
    in: "query",
    name: "ticket",
    description: "A ticket from POST /api/chatroom/{id}/stream-ticket: that chatroom's two stream endpoints only",
  });
  // Built on first use and kept for the isolate's life: the routes cannot change once the app is made.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  let reference: string | undefined;
  const openApiDocument = () => {
    document ??= openApiDocumentOf(app);
    return document;
  };
  app.get("/openapi.json", (c) => c.json(openApiDocument()));
  app.get("/docs", (c) => {
    reference ??= renderApiReference(openApiDocument());
    return c.html(reference);
  });
  app.route("/playground", playgroundRoutes);
  app.get("/s/:shareId", sharePage);

  app.notFound(handleNotFound);
  app.onError(handleError);
  return app;
}
