import { OpenAPIHono } from "@hono/zod-openapi";
import type { Env } from "hono";
import type { ZodError } from "zod";
import { AppError } from "./errors";

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

/** A router whose zod validation failures become the contract's VALIDATION_FAILED error. */
export function createRouter<E extends Env>() {
  return new OpenAPIHono<E>({
    defaultHook: (result) => {
      if (!result.success) throw validationFailed(result.error);
    },
  });
}
