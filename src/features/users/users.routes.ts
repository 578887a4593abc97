import { createRoute, z } from "@hono/zod-openapi";
import { unauthorized } from "../../lib/errors";
import { authErrors, bearerAuth, errorResponses, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { toUserResponse } from "../auth";
import { tierAndUsage, utcDay } from "../prompts";
import { claimExport, exportStream } from "./export";
import { readUsage } from "./usage.repo";
import { findUserWithQuota } from "./users.repo";
import { ExportSchema, MeResponseSchema, UsageQuerySchema, UsageResponseSchema } from "./users.schemas";

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

userRoutes.openapi(
  createRoute({
    method: "get",
    path: "/export",
    operationId: "exportAccount",
    tags: ["Your data"],
    summary: "Download your whole account as one JSON file",
    description:
      "The user, the subscription's state, every chatroom with its settings and every message of every branch (with parentId, version, feedback, tokens, model), and the prompts per day. " +
      "Written as it is read from D1, 500 messages at a time, so no account is too big for it. No password hash, OTP, token or Stripe id. One export a minute.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    responses: {
      200: {
        ...jsonResponse(ExportSchema, "The export, as an attachment"),
        headers: z.object({
          "Content-Disposition": z
            .string()
            .openapi({ example: 'attachment; filename="gemini-backend-export-2026-08-16.json"' }),
        }),
      },
      ...errorResponses({ ...authErrors, 429: "EXPORT_RATE_LIMITED: one export a minute; Retry-After says when" }),
    },
  }),
  async (c) => {
    const now = new Date();
    const headers = {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Disposition": `attachment; filename="gemini-backend-export-${utcDay(now)}.json"`,
      "Cache-Control": "no-store",
    };
    // HEAD (answered by this GET handler) learns the headers without using the minute's export.
    if (c.req.method === "HEAD") return new Response(null, { headers }) as never;
    await claimExport(c.var.db, c.var.userId, now);
    return new Response(exportStream(c.var.db, c.var.userId, now), { headers }) as never;
  },
);
