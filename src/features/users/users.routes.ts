import { createRoute, z } from "@hono/zod-openapi";
import { unauthorized } from "../../lib/errors";
import { authErrors, bearerAuth, bodyErrors, errorResponses, jsonBody, jsonResponse } from "../../lib/openapi";
import { createRouter } from "../../lib/validate";
import { requireAuth } from "../../middleware/require-auth";
import type { AppEnv } from "../../types";
import { toUserResponse } from "../auth";
import { tierAndUsage, utcDay } from "../prompts";
import { claimExport, exportStream } from "./export";
import { readUsage } from "./usage.repo";
import { findUserWithQuota } from "./users.repo";
import {
  DeleteAccountBodySchema,
  DeleteAccountResponseSchema,
  ExportSchema,
  MeResponseSchema,
  UsageQuerySchema,
  UsageResponseSchema,
} from "./users.schemas";

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
    const found = await findUserWithQuota(c.get("db"), c.get("userId"), utcDay(now), now);
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
    const { days, pro } = await readUsage(c.get("db"), c.get("userId"), today, c.req.valid("query").days, now);
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
    await claimExport(c.get("db"), c.get("userId"), now);
    return new Response(exportStream(c.get("db"), c.get("userId"), now), { headers }) as never;
  },
);

userRoutes.openapi(
  createRoute({
    method: "post",
    path: "/delete-account",
    operationId: "deleteAccount",
    tags: ["Your data"],
    summary: "Delete your account and everything in it",
    description:
      "In this order: the password is checked (a wrong one is a failed attempt of the guessing throttle, counted per user and per IP as for change-password; past 10 failures in 15 minutes, 429 TOO_MANY_ATTEMPTS). " +
      "Then an active Stripe subscription is cancelled at once through Stripe's API, without a refund of the current period; if Stripe cannot be reached, or billing is not configured while a subscription exists, the answer is 502 BILLING_UNAVAILABLE and nothing is deleted. " +
      "Then, together: every row of the account is deleted in one transaction (user, OTPs, failed sign-in attempts for the user and the phone, chatrooms, every message of every branch, the search index, prompt counts, idempotency keys, subscription, shares, whose links answer 404 from then on), " +
      "every token and stream ticket stops working, the open streams of the chatrooms get `deleted` and end, prompts still queued are dropped unanswered, and the cached chatroom lists are removed. " +
      "The phone number can sign up again and starts empty. Stripe keeps its own records of past payments; its later webhooks about the old customer are answered 200 and change nothing. There is no undo.",
    security: bearerAuth,
    middleware: [requireAuth] as const,
    request: { body: jsonBody(DeleteAccountBodySchema) },
    responses: {
      200: jsonResponse(DeleteAccountResponseSchema, "Deleted; this token no longer works"),
      ...errorResponses({
        ...bodyErrors,
        ...authErrors,
        401: "UNAUTHORIZED (the token) or INVALID_CREDENTIALS: the password is wrong",
        429: "TOO_MANY_ATTEMPTS: too many failed attempts; Retry-After says when to try again",
        502: "BILLING_UNAVAILABLE: the subscription could not be cancelled; nothing was deleted",
      }),
    },
  }),
  async (c) => {
    // Loaded when first asked for: no other request of the account part pays for Stripe's and the hubs' code.
    const { deleteAccount } = await import("./delete-account");
    await deleteAccount(c, c.req.valid("json").password);
    return c.json({ success: true as const, message: "Account deleted", deleted: true as const }, 200);
  },
);
