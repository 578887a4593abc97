import { z } from "@hono/zod-openapi";
import type { ZodObject, ZodRawShape, ZodType } from "zod";

export const ErrorSchema = z
  .object({
    success: z.literal(false),
    message: z.string(),
    error: z.object({
      code: z.string().openapi({ example: "VALIDATION_FAILED" }),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      requestId: z.string().optional().openapi({ description: "Present on 500 INTERNAL, to quote in a bug report." }),
      usage: z
        .object({
          used: z.number().int(),
          limit: z.number().int().nullable(),
          remaining: z.number().int().nullable(),
          resetsAt: z.string(),
        })
        .optional()
        .openapi({ description: "Present on 429 DAILY_LIMIT_REACHED: today's usage and when it resets (00:00 UTC)." }),
    }),
  })
  .openapi("Error");

const HumanMessageSchema = z.string().openapi({ description: "A human-readable summary; its wording may change" });

/** The success envelope: `{ success: true, message, ...payload }`. */
export function successSchema<T extends ZodRawShape>(
  shape: T,
): ZodObject<T & { success: z.ZodLiteral<true>; message: z.ZodString }> {
  return z.object({ success: z.literal(true), message: HumanMessageSchema, ...shape });
}

export const MessageOnlySchema = successSchema({});

export const jsonBody = <T extends ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});

export const jsonResponse = <T extends ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

const BEARER_CHALLENGE = {
  "WWW-Authenticate": {
    description:
      'RFC 6750. No token sent (and login\'s INVALID_CREDENTIALS): Bearer realm="api". A token sent but refused: Bearer error="invalid_token", error_description="<the message>".',
    schema: { type: "string" as const },
  },
};

/**
 * Documents the error statuses a route can answer; each body is the error envelope, and the 401 of
 * every 401 its WWW-Authenticate header.
 */
export function errorResponses<S extends number>(described: Record<S, string>) {
  return Object.fromEntries(
    Object.entries(described).map(([status, description]) => [
      status,
      {
        ...jsonResponse(ErrorSchema, String(description)),
        ...(status === "401" ? { headers: BEARER_CHALLENGE } : {}),
      },
    ]),
  ) as Record<S, ReturnType<typeof jsonResponse<typeof ErrorSchema>>>;
}

export const bearerAuth = [{ bearerAuth: [] }];

/** The two live-stream GETs also take a stream ticket as `?ticket=`, for EventSource. */
export const bearerOrTicketAuth: Record<string, string[]>[] = [{ bearerAuth: [] }, { streamTicket: [] }];

/** The failures every route with a JSON body can answer. */
export const bodyErrors = {
  400: "VALIDATION_FAILED (with details) or INVALID_JSON",
  413: "PAYLOAD_TOO_LARGE: body over 64 KiB",
  415: "UNSUPPORTED_MEDIA_TYPE: body is not JSON",
} as const;

export const authErrors = {
  401:
    "UNAUTHORIZED; the message says which: the token (or stream ticket) is missing, malformed, invalid (not issued by this server), " +
    "expired, or revoked (by a password change or reset, logout or logout-all). WWW-Authenticate carries the RFC 6750 challenge.",
} as const;
