import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export type ErrorDetail = { path: string; message: string };

/** The one error type thrown anywhere in the app; `handleError` turns it into the contract's envelope. */
export class AppError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
    /** More of what went wrong, beside `code` in `error` (e.g. `usage` on DAILY_LIMIT_REACHED). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const unauthorized = () => new AppError(401, "UNAUTHORIZED", "Missing, invalid or expired token");
export const notFound = (what = "Resource") => new AppError(404, "NOT_FOUND", `${what} not found`);
export const invalidJson = () => new AppError(400, "INVALID_JSON", "Request body is not valid JSON");
export const payloadTooLarge = (limitBytes: number) =>
  new AppError(413, "PAYLOAD_TOO_LARGE", `Request body must not exceed ${limitBytes} bytes`);
export const unsupportedMediaType = () =>
  new AppError(415, "UNSUPPORTED_MEDIA_TYPE", "Request body must be JSON (Content-Type: application/json)");
export const tooManyRequests = (code: string, message: string, retryAfterSeconds: number) =>
  new AppError(429, code, message, undefined, { "Retry-After": String(Math.max(1, Math.ceil(retryAfterSeconds))) });

function errorBody(code: string, message: string, extra: { details?: ErrorDetail[]; requestId?: string } = {}) {
  return { success: false as const, message, error: { code, ...extra } };
}

/** Maps every failure (ours, Hono's, or a bug) to the error envelope; never leaks internals. */
export function handleError(err: Error, c: Context) {
  if (err instanceof AppError) {
    for (const [name, value] of Object.entries(err.headers ?? {})) c.header(name, value);
    return c.json(
      errorBody(err.code, err.message, { ...err.extra, ...(err.details ? { details: err.details } : {}) }),
      err.status,
    );
  }
  if (err instanceof HTTPException) {
    const mapped = fromHttpException(err);
    if (mapped) return handleError(mapped, c);
  }
  const requestId: string = c.get("requestId") ?? "unknown";
  console.error(JSON.stringify({ level: "error", requestId, error: err.name, message: err.message, stack: err.stack }));
  return c.json(errorBody("INTERNAL", "Something went wrong on our side", { requestId }), 500);
}

function fromHttpException(err: HTTPException): AppError | undefined {
  switch (err.status) {
    case 400:
      // Hono's validator throws this for a body it cannot parse as JSON.
      return invalidJson();
    case 401:
      return unauthorized();
    case 404:
      return notFound();
    case 413:
      return new AppError(413, "PAYLOAD_TOO_LARGE", "Request body is too large");
    case 415:
      return unsupportedMediaType();
    default:
      return undefined;
  }
}

export function handleNotFound(c: Context) {
  return c.json(errorBody("NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`), 404);
}
