import type { Context, Hono } from "hono";
import type { RouterRoute } from "hono/types";
import { AppError, noRoute } from "../lib/errors";
import type { AppEnv } from "../types";

/** The order methods are listed in `Allow`. */
const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * What routing alone decides, before auth or body checks (the edge middleware answers with it): a path
 * no route serves is a 404, and a known path asked with a method it does not serve is 405
 * METHOD_NOT_ALLOWED with `Allow` (API.md Conventions). It asks the app's own router, so paths match
 * exactly as routing matches them. HEAD is served wherever GET is (Hono answers it with the GET
 * handler), and OPTIONS everywhere (CORS, answered before this).
 */
export function refusedRoute(app: Hono<AppEnv>) {
  const servedBy = (method: string, path: string) =>
    app.router.match(method, path)[0].some(([[, route]]) => route.method !== "ALL");
  let routeMethods: string[] | undefined;
  return (c: Context<AppEnv>, matched: RouterRoute[]): AppError | undefined => {
    // The app has already matched this request (HEAD as GET) on its routing path (`c.req.path`): a
    // route of its method among the matches (`c.req.matchedRoutes`) lets it through without asking the
    // router again.
    if (matched.some((route) => route.method !== "ALL")) return undefined;
    const path = c.req.path;
    routeMethods ??= [...new Set(app.routes.map((route) => route.method).filter((m) => m !== "ALL"))];
    const allowed = routeMethods.filter((candidate) => servedBy(candidate, path));
    if (allowed.length === 0) return noRoute(c);
    if (allowed.includes("GET")) allowed.push("HEAD");
    allowed.push("OPTIONS");
    allowed.sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
    return new AppError(
      405,
      "METHOD_NOT_ALLOWED",
      `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(", ")}`,
      undefined,
      { Allow: allowed.join(", ") },
    );
  };
}
