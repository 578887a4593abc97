import type { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { createDb } from "../db/client";
import { handleError } from "../lib/errors";
import type { AppEnv } from "../types";
import { corsPolicy, preflight, setCorsHeaders } from "./cors";
import { BOOKMARK_HEADER, sessionConstraint } from "./d1-session";
import { refusedRoute } from "./route-guard";

/** The request id a client may send (and is echoed back): at most 255 of these characters. */
const CLIENT_REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * Security headers on every answer: never sniffed as another type, never framed by another site, HTTPS
 * only, and not readable by another site's no-cors requests.
 */
const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ["Cross-Origin-Resource-Policy", "same-origin"],
  ["Strict-Transport-Security", "max-age=15552000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-Frame-Options", "SAMEORIGIN"],
];

/**
 * And on every answer that is not JSON (the playground and its files, /docs, shared pages, streams),
 * the headers that only mean something to a page a browser renders (hono/secure-headers' other
 * defaults). A JSON answer is never rendered, so it goes without these seven (about 250 bytes).
 */
const PAGE_HEADERS: readonly (readonly [string, string])[] = [
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Origin-Agent-Cluster", "?1"],
  ["Referrer-Policy", "no-referrer"],
  ["X-DNS-Prefetch-Control", "off"],
  ["X-Download-Options", "noopen"],
  ["X-Permitted-Cross-Domain-Policies", "none"],
  ["X-XSS-Protection", "0"],
];

/**
 * What every request goes through first, in one step (each request pays for one middleware, not six):
 * - a request id (`X-Request-Id`: the client's if it sent a well-formed one, a new UUID otherwise), on
 *   the answer and in every log line of the request;
 * - CORS: a preflight (OPTIONS) is answered here; any other answer gets its CORS headers once made;
 * - the route guard (route-guard.ts): a path no route serves is a 404, a method it does not serve a 405;
 * - the request's D1 session (d1-session.ts), whose latest bookmark the answer carries;
 * - the security headers above, on every answer, errors included (a page's only on what is not JSON);
 * - one structured log line when it is done (method, route pattern, status, duration, request id, user).
 * Headers are set once the answer is made, on the answer itself, so nothing is copied from a placeholder.
 */
export function edge(app: Hono<AppEnv>) {
  const guard = refusedRoute(app);
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = Date.now();
    const sent = c.req.raw.headers;
    // The routes this request matched (Hono builds this list on each read): for the guard and the log.
    const routes = c.req.matchedRoutes;
    const clientId = sent.get("X-Request-Id");
    const requestId = clientId && CLIENT_REQUEST_ID.test(clientId) ? clientId : crypto.randomUUID();
    c.set("requestId", requestId);
    const cors = corsPolicy(c.env.CORS_ORIGINS, sent.get("Origin"));
    let session: D1DatabaseSession | undefined;
    const isPreflight = c.req.method === "OPTIONS";
    if (isPreflight) {
      c.res = preflight(cors);
    } else {
      const refusal = guard(c, routes);
      if (refusal) {
        c.res = handleError(refusal, c);
      } else {
        session = c.env.DB.withSession(sessionConstraint(sent.get(BOOKMARK_HEADER)));
        c.set("db", createDb(session as unknown as D1Database));
        await next();
      }
    }
    const answer = c.res;
    try {
      const headers = answer.headers;
      headers.set("X-Request-Id", requestId);
      for (const [name, value] of SECURITY_HEADERS) headers.set(name, value);
      if (!headers.get("Content-Type")?.startsWith("application/json")) {
        for (const [name, value] of PAGE_HEADERS) headers.set(name, value);
      }
      if (!isPreflight) setCorsHeaders(headers, cors);
      const latest = session?.getBookmark();
      if (latest && !headers.has(BOOKMARK_HEADER)) headers.set(BOOKMARK_HEADER, latest);
    } catch {
      // A response with immutable headers (a WebSocket upgrade) goes out as it is.
    }
    const status = answer.status;
    console.log(
      JSON.stringify({
        level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
        message: "request",
        method: c.req.method,
        route: routes[c.req.routeIndex]?.path,
        status,
        durationMs: Date.now() - started,
        requestId,
        userId: c.get("userId"),
      }),
    );
  });
}
