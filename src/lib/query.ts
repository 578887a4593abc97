import { z } from "@hono/zod-openapi";

/**
 * A whole number in the query string. Digits only: `wait=`, `wait=null` and `wait=1.5` are a 400 alike
 * (a plain coercion would read the empty value as 0).
 */
export const queryInteger = (name: string, min: number, max: number) =>
  z.preprocess(
    (value) => (typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value),
    z
      .int({ error: `${name} must be a whole number from ${min} to ${max}` })
      .min(min)
      .max(max),
  );
