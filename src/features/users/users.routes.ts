import { createRoute } from "@hono/zod-openapi";
import { unauthorized } from "../../lib/errors";
import { authErrors, bearerAuth, errorResponses, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { toUserResponse } from "../auth";
import { tierAndUsage, utcDay } from "../prompts";
import { findUserWithQuota } from "./users.repo";
import { MeResponseSchema } from "./users.schemas";

export const userRoutes = createRouter<AppEnv>();

userRoutes.openapi(
  createRoute({
    method: "get",
    path: "/me",
    operationId: "getMe",
    tags: ["User"],
    summary: "The signed-in user, their tier and today's prompt usage",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: { 200: jsonResponse(MeResponseSchema, "The current user"), ...errorResponses(authErrors) },
  }),
  async (c) => {
    const now = new Date();
    const found = await findUserWithQuota(c.var.db, c.var.userId, utcDay(now), now);
    if (!found) throw unauthorized("revoked");
    const user = { ...toUserResponse(found.user), ...tierAndUsage(found, now) };
    return c.json({ success: true as const, message: "Current user", user }, 200);
  },
);
