import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../types";

/** CORS for a CORS_ORIGINS value: "*" or a comma-separated list of exact origins. */
function corsFor(origins: string): MiddlewareHandler {
  const configured = origins
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  const allowAll = configured.length === 0 || configured.includes("*");
  return cors({
    origin: allowAll ? "*" : (origin) => (configured.includes(origin) ? origin : null),
    allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
    allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID", "X-D1-Bookmark"],
    exposeHeaders: [
      "X-Request-Id",
      "X-Cache",
      "X-D1-Bookmark",
      "Retry-After",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "WWW-Authenticate",
    ],
    maxAge: 600,
  });
}

/** Built once per CORS_ORIGINS value (an isolate sees one), not on every request. */
let built: { origins: string; middleware: MiddlewareHandler } | undefined;

export const corsFromEnv = createMiddleware<AppEnv>((c, next) => {
  const origins = c.env.CORS_ORIGINS ?? "*";
  if (built?.origins !== origins) built = { origins, middleware: corsFor(origins) };
  return built.middleware(c, next);
});
