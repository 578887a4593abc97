import { createMiddleware } from "hono/factory";
import { ensureTokenCurrent, verifyToken } from "../features/auth/tokens";
import { unauthorized } from "../lib/errors";
import type { AppEnv } from "../types";

export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const match = /^Bearer +([^\s]+) *$/i.exec(c.req.header("Authorization") ?? "");
  if (!match?.[1]) throw unauthorized();
  const claims = await verifyToken(c.env, match[1]);
  await ensureTokenCurrent(c.env, c.var.db, claims);
  c.set("userId", claims.userId);
  await next();
});
