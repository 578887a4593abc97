import { createRoute, type OpenAPIObjectConfigure } from "@hono/zod-openapi";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { renderApiReference } from "./lib/api-reference";
import { canonicalPath } from "./lib/canonical-path";
import { handleError, handleNotFound } from "./lib/errors";
import { buildDocsOnlySchemas, jsonResponse, MessageOnlySchema } from "./lib/openapi";
import { createRouter } from "./lib/validate";
import { edge } from "./middleware/edge";
import { jsonBody } from "./middleware/json-body";
import type { RouteSet } from "./route-sets";
import type { AppEnv } from "./types";

type Router = ReturnType<typeof createRouter<AppEnv>>;
type Handler = (c: Context<AppEnv>) => Response | Promise<Response>;

/**
 * The routers of the app, by the part of the API they serve. Each part is loaded (and its routes and
 * request schemas built) only when a request for it first comes: see src/index.ts.
 */
export type Routers = {
  auth?: Router;
  user?: Router;
  models?: Router;
  search?: Router;
  chatrooms?: Router;
  /** The token check every /api/chatroom path takes (loaded with the chat part: it reads auth and live). */
  requireAuth?: MiddlewareHandler<AppEnv>;
  prompts?: Router;
  live?: Router;
  shares?: Router;
  shared?: Router;
  sharePage?: Handler;
  billing?: Router;
  stripeWebhook?: Router;
  playground?: Hono<AppEnv>;
  /** With every part: /openapi.json and /docs too. */
  everything?: true;
};

export type { RouteSet } from "./route-sets";

const account = async (): Promise<Routers> => ({
  auth: (await import("./features/auth/auth.routes")).authRoutes,
  user: (await import("./features/users/users.routes")).userRoutes,
});
const chat = async (): Promise<Routers> => {
  const shares = await import("./features/shares/shares.routes");
  return {
    requireAuth: (await import("./middleware/require-auth")).requireAuth,
    models: (await import("./features/models/models.routes")).modelRoutes,
    search: (await import("./features/search/search.routes")).searchRoutes,
    chatrooms: (await import("./features/chatrooms/chatrooms.routes")).chatroomRoutes,
    prompts: (await import("./features/prompts/prompts.routes")).promptRoutes,
    live: (await import("./features/live/live.routes")).liveRoutes,
    shares: shares.shareRoutes,
    shared: shares.sharedRoutes,
    sharePage: shares.sharePage,
  };
};
const billing = async (): Promise<Routers> => {
  const routes = await import("./features/billing/billing.routes");
  return { billing: routes.billingRoutes, stripeWebhook: routes.stripeWebhookRoutes };
};
const playground = async (): Promise<Routers> => ({
  playground: (await import("./features/playground/playground.routes")).playgroundRoutes,
});

/** The routers of one part of the API ("none": only the health check and the 404s and 405s). */
export async function loadRouters(set: RouteSet): Promise<Routers> {
  switch (set) {
    case "account":
      return account();
    case "chat":
      return chat();
    case "billing":
      return billing();
    case "playground":
      return playground();
    case "everything": {
      const parts = await Promise.all([account(), chat(), billing(), playground()]);
      return Object.assign({ everything: true as const }, ...parts);
    }
    case "none":
      return {};
  }
}

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
export function openApiDocumentOf(app: Router) {
  buildDocsOnlySchemas(app);
  return app.getOpenAPI31Document(openApiConfig as never);
}

/**
 * The app with the routers given (every part of the API: `createApp(await loadRouters("everything"))`).
 * The middleware, guards and error handling are the same whichever parts it holds; a path of a part it
 * does not hold is a 404, so a request must reach the app holding its part (src/index.ts).
 */
export function createApp(routers: Routers) {
  // Routing uses the canonical path, so the brief's paths without /api (and with a trailing slash) reach
  // the same routes, middleware and guards, including the webhook mounted before the body guard.
  const app = createRouter<AppEnv>({ getPath: canonicalPath });

  app.use("*", edge(app));
  // Registered before the JSON body guard, so Hono runs it first and the guard never sees its body:
  // the webhook verifies Stripe's signature on the raw bytes before anything parses them.
  if (routers.stripeWebhook) app.route("/api/billing/webhook", routers.stripeWebhook);
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

  if (routers.auth) app.route("/api/auth", routers.auth);
  if (routers.user) app.route("/api/user", routers.user);
  if (routers.models) app.route("/api/models", routers.models);
  if (routers.search) app.route("/api/search", routers.search);
  // Rooms, their messages and live replies: every path under /api/chatroom needs a token (the two
  // stream GETs take a stream ticket instead), checked once before whichever router serves it.
  if (routers.chatrooms && routers.requireAuth) app.use("/api/chatroom/*", routers.requireAuth);
  for (const router of [routers.chatrooms, routers.prompts, routers.live, routers.shares]) {
    if (router) app.route("/api/chatroom", router);
  }
  if (routers.shared) app.route("/api/shared", routers.shared);
  if (routers.billing) app.route("/api/billing", routers.billing);

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
  if (routers.everything) {
    app.get("/openapi.json", (c) => c.json(openApiDocument()));
    app.get("/docs", (c) => {
      reference ??= renderApiReference(openApiDocument());
      return c.html(reference);
    });
  }
  if (routers.playground) app.route("/playground", routers.playground);
  if (routers.sharePage) app.get("/s/:shareId", routers.sharePage);

  app.notFound(handleNotFound);
  app.onError(handleError);
  return app;
}
