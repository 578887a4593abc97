import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { ZodError } from "zod";
import { AppError } from "./errors";
import { errorResponses } from "./openapi";

export function validationFailed(error: ZodError) {
  const details = error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  return new AppError(400, "VALIDATION_FAILED", "Request validation failed", details);
}

/** What any operation can answer besides its own responses. */
const SHARED_RESPONSES = errorResponses({
  500: "INTERNAL: a fault on our side; error.requestId is the X-Request-Id response header",
});

/**
 * A router whose zod validation failures become the contract's VALIDATION_FAILED error. Every route
 * registered with `openapi()` also documents the 500 any request can meet.
 */
export function createRouter<E extends Env>() {
  const router = new OpenAPIHono<E>({
    defaultHook: (result) => {
      if (!result.success) throw validationFailed(result.error);
    },
  });
  const register = router.openapi;
  router.openapi = ((route: RouteConfig, ...rest: never[]) =>
    register(
      { ...route, responses: { ...SHARED_RESPONSES, ...route.responses } } as never,
      ...(rest as [never]),
    )) as typeof register;
  return router;
}
