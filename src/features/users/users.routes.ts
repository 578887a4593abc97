import { createRoute } from "@hono/zod-openapi";
import { unauthorized } from "../../lib/errors";
import { authErrors, bearerAuth, errorResponses, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { toUserResponse } from "../auth";
import { tierAndUsage, utcDay } from "../prompts";
import { readUsage } from "./usage.repo";
import { findUserWithQuota } from "./users.repo";
import { MeResponseSchema, UsageQuerySchema, UsageResponseSchema } from "./users.schemas";

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

userRoutes.openapi(
  createRoute({
    method: "get",
    path: "/usage",
    operationId: "getUsage",
    tags: ["Your data"],
    summary: "Your prompts and tokens per UTC day, with totals and today's quota",
    description:
      "Read from what is already stored: the daily prompt counts the quota keeps and Gemini's usageMetadata on each reply. One D1 round trip.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    request: { query: UsageQuerySchema },
    responses: {
      200: jsonResponse(UsageResponseSchema, "Usage, newest day first"),
      ...errorResponses({ ...authErrors, 400: "VALIDATION_FAILED: days out of 1–90" }),
    },
  }),
  async (c) => {
    const now = new Date();
    const today = utcDay(now);
    const { days, pro } = await readUsage(c.var.db, c.var.userId, today, c.req.valid("query").days, now);
    const { tier, usage } = tierAndUsage({ pro, used: days[0]?.prompts ?? 0 }, now);
    const totals = days.reduce(
      (sum, day) => ({
        prompts: sum.prompts + day.prompts,
        promptTokens: sum.promptTokens + day.promptTokens,
        outputTokens: sum.outputTokens + day.outputTokens,
      }),
      { prompts: 0, promptTokens: 0, outputTokens: 0 },
    );
    return c.json({ success: true as const, message: "Usage", tier, today: usage, days, totals }, 200);
  },
);
