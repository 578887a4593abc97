import { createRoute } from "@hono/zod-openapi";
import { unauthorized } from "../../lib/errors";
import { authErrors, bearerAuth, errorResponses, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { findUserById } from "../auth/auth.repo";
import { toUserResponse } from "../auth/auth.schemas";
import { describeUsage } from "../prompts/quota";
import { MeResponseSchema } from "./users.schemas";

export const userRoutes = createRouter<AppEnv>();

userRoutes.openapi(
  createRoute({
    method: "get",
    path: "/me",
    tags: ["User"],
    summary: "The signed-in user, their tier and today's prompt usage",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: { 200: jsonResponse(MeResponseSchema, "The current user"), ...errorResponses(authErrors) },
  }),
  async (c) => {
    const user = await findUserById(c.var.db, c.var.userId);
    if (!user) throw unauthorized();
    // Until prompts and billing land, every user is Basic with nothing counted.
    const usage = describeUsage("basic", 0, new Date());
    return c.json(
      {
        success: true as const,
        message: "Current user",
        user: { ...toUserResponse(user), tier: "basic" as const, usage },
      },
      200,
    );
  },
);
