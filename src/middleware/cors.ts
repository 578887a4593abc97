import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../types";

const ALLOW_METHODS = "GET,POST,PATCH,DELETE,OPTIONS";
const ALLOW_HEADERS = "Authorization,Content-Type,Idempotency-Key,Last-Event-ID,X-D1-Bookmark";
const EXPOSE_HEADERS = [
  "X-Request-Id",
  "X-Cache",
  "X-D1-Bookmark",
  "Retry-After",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "WWW-Authenticate",
].join(",");
const MAX_AGE_SECONDS = "600";

/** CORS_ORIGINS is "*" or a comma-separated list of exact origins; parsed once per value. */
let policy: { configured: string; allowAll: boolean; origins: string[] } | undefined;
function policyFor(configured: string) {
  if (policy?.configured !== configured) {
    const origins = configured
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean);
    policy = { configured, allowAll: origins.length === 0 || origins.includes("*"), origins };
  }
  return policy;
}

/**
 * CORS. A preflight (OPTIONS) is answered here, before routing. Any other answer, errors included,
 * gets its headers once it is made: set on the final response rather than on a placeholder before the
 * handler runs (which makes Hono copy every header into a new Response on each request).
 */
export const corsFromEnv = createMiddleware<AppEnv>(async (c, next) => {
  const { allowAll, origins } = policyFor(c.env.CORS_ORIGINS ?? "*");
  const origin = c.req.header("Origin");
  const allowOrigin = allowAll ? "*" : origin && origins.includes(origin) ? origin : undefined;
  if (c.req.method === "OPTIONS") {
    return c.body(null, 204, {
      ...(allowOrigin ? { "Access-Control-Allow-Origin": allowOrigin } : {}),
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": ALLOW_HEADERS,
      "Access-Control-Max-Age": MAX_AGE_SECONDS,
      "Access-Control-Expose-Headers": EXPOSE_HEADERS,
      ...(allowAll ? {} : { Vary: "Origin, Access-Control-Request-Headers" }),
    });
  }
  await next();
  try {
    if (allowOrigin) c.res.headers.set("Access-Control-Allow-Origin", allowOrigin);
    c.res.headers.set("Access-Control-Expose-Headers", EXPOSE_HEADERS);
    if (!allowAll) c.res.headers.append("Vary", "Origin");
  } catch {
    // A response with immutable headers (a WebSocket upgrade, which CORS does not govern) goes out as it is.
  }
});
