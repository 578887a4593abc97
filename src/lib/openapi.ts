import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { ZodObject, ZodRawShape, ZodType } from "zod";

const BUILD = Symbol("docs-only schema");
type DocsOnly = { [BUILD]: () => unknown };

/**
 * A schema only the OpenAPI document needs (a response's, an event's): built on first use, by
 * /openapi.json or /docs, not when the Worker starts, where building zod schemas with their OpenAPI
 * metadata is most of the startup CPU. Typed as the schema itself, so routes and handlers are checked
 * against it; inside another docs-only schema, `built()` gives the schema, and the document is made
 * after `buildDocsOnlySchemas` (src/app.ts). Each is built once, so a named one is one component.
 */
export function docsOnly<T>(build: () => T): T {
  let schema: T | undefined;
  const lazy: DocsOnly = { [BUILD]: () => (schema ??= build()) };
  return lazy as unknown as T;
}

/** The schema behind a docs-only one (any other value as it is). */
export function built<T>(schema: T): T {
  const build = (schema as Partial<DocsOnly> | null | undefined)?.[BUILD];
  return build ? (build() as T) : schema;
}

type RegisteredResponse = { content?: Record<string, { schema?: unknown }> };

/** Builds the docs-only schemas the app's routes answer with, in place, before the document is generated. */
// biome-ignore lint/suspicious/noExplicitAny: any app's registry
export function buildDocsOnlySchemas(app: OpenAPIHono<any>) {
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== "route") continue;
    for (const response of Object.values(definition.route.responses) as RegisteredResponse[]) {
      for (const media of Object.values(response.content ?? {})) {
        if (media.schema !== undefined) media.schema = built(media.schema);
      }
    }
  }
}

export const ErrorSchema = docsOnly(() =>
  z
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
          .openapi({
            description: "Present on 429 DAILY_LIMIT_REACHED: today's usage and when it resets (00:00 UTC).",
          }),
      }),
    })
    .openapi("Error"),
);

const HumanMessageSchema = docsOnly(() =>
  z.string().openapi({ description: "A human-readable summary; its wording may change" }),
);

/** The success envelope: `{ success: true, message, ...payload }`. */
export function successSchema<T extends ZodRawShape>(
  shape: T,
): ZodObject<T & { success: z.ZodLiteral<true>; message: z.ZodString }> {
  return z.object({ success: z.literal(true), message: built(HumanMessageSchema), ...shape });
}

export const MessageOnlySchema = docsOnly(() => successSchema({}));

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
    "expired, or revoked (by a password change or reset, logout, logout-all or account deletion). WWW-Authenticate carries the RFC 6750 challenge.",
} as const;
