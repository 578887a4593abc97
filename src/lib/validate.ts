import { OpenAPIHono } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { ZodError } from "zod";
import { AppError } from "./errors";

export function validationFailed(error: ZodError) {
  const details = error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  return new AppError(400, "VALIDATION_FAILED", "Request validation failed", details);
}

/** A router whose zod validation failures become the contract's VALIDATION_FAILED error. */
export function createRouter<E extends Env>() {
  return new OpenAPIHono<E>({
    defaultHook: (result) => {
      if (!result.success) throw validationFailed(result.error);
    },
  });
}
