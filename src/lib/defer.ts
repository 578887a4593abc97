import type { Context } from "hono";

/** Hands a task to the runtime to finish after the response (`ctx.waitUntil`). */
export type Defer = (task: Promise<unknown>) => void;

export const deferTo =
  (c: Context): Defer =>
  (task) =>
    c.executionCtx.waitUntil(task);
