import { getPath } from "hono/utils/url";

/** The original assignment's billing paths, which do not follow `/api/<feature>/…`. */
const BILLING_ALIASES: Record<string, string> = {
  "/subscribe/pro": "/api/billing/subscribe/pro",
  "/subscription/status": "/api/billing/subscription/status",
  "/webhook/stripe": "/api/billing/webhook/stripe",
};

/** Served where they are: the health check, the OpenAPI document, its page, the playground and shared pages (/s/:id). */
const OUTSIDE_API = /^\/(?:openapi\.json|docs|playground(?:\/.*)?|s\/[^/]+)?$/;

/**
 * The path the app routes a request by (API.md Conventions): the original assignment's endpoint table
 * works verbatim, so every route is also served without `/api` (`/auth/signup`, `/user/me`, …), billing's
 * three brief paths reach `/api/billing/…`, and a trailing slash is ignored. Only routing sees the
 * canonical path; the request itself (its URL, body and headers, the webhook's raw bytes) is untouched,
 * and the OpenAPI document lists only the canonical paths.
 */
export function canonicalPath(request: Request): string {
  const path = getPath(request).replace(/(.)\/+$/, "$1");
  if (path === "/api" || path.startsWith("/api/") || OUTSIDE_API.test(path)) return path;
  return BILLING_ALIASES[path] ?? `/api${path}`;
}
