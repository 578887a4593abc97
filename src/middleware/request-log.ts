import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../types";

/**
 * One structured line per request for Workers Logs: method, route pattern (never the query string,
 * where a stream ticket may be), status, duration, request id and the user when known. Never a token,
 * OTP, password or prompt text. Errors log their own line too (`handleError`), with the same request id.
 */
export const requestLog = createMiddleware<AppEnv>(async (c, next) => {
  const started = performance.now();
  await next();
  const status = c.res.status;
  console.log(
    JSON.stringify({
      level: status >= 500 ? "error" : status >= 400 ? "warn" : "info",
      message: "request",
      method: c.req.method,
      route: c.req.routePath,
      status,
      durationMs: Math.round(performance.now() - started),
      requestId: c.var.requestId,
      userId: c.var.userId,
    }),
  );
});
