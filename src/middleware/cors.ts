import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../types";

/** CORS_ORIGINS is "*" or a comma-separated list of exact origins. */
export const corsFromEnv = createMiddleware<AppEnv>((c, next) => {
  const configured = (c.env.CORS_ORIGINS ?? "*")
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
  })(c, next);
});
