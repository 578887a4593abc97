import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { Env, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import type { ZodError } from "zod";
import { AppError, type ErrorDetail } from "./errors";
import { errorResponses } from "./openapi";

/** One detail per field: the first issue zod found for it (the most basic one, e.g. "required"). */
export function validationFailed(error: ZodError) {
  const details: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  for (const issue of error.issues) {
    const path = issue.path.map(String).join(".");
    if (seen.has(path)) continue;
    seen.add(path);
    details.push({ path, message: issue.message });
  }
  return new AppError(400, "VALIDATION_FAILED", "Request validation failed", details);
}

/** What any operation can answer besides its own responses; each route's own description wins. */
const SHARED_RESPONSES = errorResponses({
  400: "VALIDATION_FAILED: a query parameter this operation does not take",
  500: "INTERNAL: a fault on our side; error.requestId is the X-Request-Id response header",
});

/**
 * A query parameter the operation does not document is a 400, not silently ignored: a misspelt
 * `?wiat=25` would otherwise answer at once as if no wait had been asked for.
 */
function rejectUnknownQuery(route: RouteConfig): MiddlewareHandler {
  const query = route.request?.query;
  const known = query && "shape" in query ? Object.keys(query.shape as object) : [];
  const takes = known.length ? `this operation takes ${known.join(", ")}` : "this operation takes none";
  return createMiddleware(async (c, next) => {
    if (!c.req.url.includes("?")) return next();
    const details: ErrorDetail[] = Object.keys(c.req.queries())
      .filter((name) => !known.includes(name))
      .map((name) => ({ path: name, message: `Unknown query parameter; ${takes}` }));
    if (details.length) throw new AppError(400, "VALIDATION_FAILED", "Request validation failed", details);
    await next();
  });
}

/**
 * A router whose zod validation failures become the contract's VALIDATION_FAILED error. Every route
 * registered with `openapi()` also rejects query parameters it does not document (after its own
 * middleware, such as auth, like the other validators), and documents that 400 and the 500 any
 * request can meet.
 */
export function createRouter<E extends Env>(options: { getPath?: (request: Request) => string } = {}) {
  const router = new OpenAPIHono<E>({
    ...options,
    defaultHook: (result) => {
      if (!result.success) throw validationFailed(result.error);
    },
  });
  const register = router.openapi;
  router.openapi = ((route: RouteConfig & { middleware?: MiddlewareHandler | MiddlewareHandler[] }, ...rest: never[]) =>
    register(
      {
        ...route,
        middleware: [...[route.middleware ?? []].flat(), rejectUnknownQuery(route)],
        responses: { ...SHARED_RESPONSES, ...route.responses },
      } as never,
      ...(rest as [never]),
    )) as typeof register;
  return router;
}
