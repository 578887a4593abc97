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

/**
 * Why a request is not authenticated: each 401 says which in `message` (API.md Conventions). Kept to
 * printable ASCII without quotes or backslashes, since each is also the RFC 6750 `error_description`.
 */
export const AUTH_FAILURES = {
  missing: "The Authorization header is missing; send Authorization: Bearer <authToken>",
  notBearer: "The Authorization header must be Bearer <authToken>; no other scheme is accepted",
  ticketNotHere:
    "A stream ticket only opens its chatroom's events and message streams; send Authorization: Bearer <authToken>",
  malformed: "The token is malformed; send the authToken from login or verify-otp as it was given",
  invalid: "The token is invalid: its signature or issuer does not match, so this server did not issue it",
  expired: "The token has expired; sign in again",
  revoked:
    "The token was revoked by a password change or reset, by logout-all or by deleting the account; sign in again",
  loggedOut: "The token was revoked by logout; sign in again",
  ticketMalformed: "The stream ticket is malformed; pass the ticket from POST stream-ticket as it was given",
  ticketInvalid: "The stream ticket is invalid: this server did not issue it",
  ticketExpired: "The stream ticket has expired (they last 300 s); ask for a new one",
  ticketOtherRoom: "The stream ticket is for another chatroom",
  ticketRevoked:
    "The stream ticket was revoked with its token by a password change or reset, by logout-all or by deleting the account; sign in again",
  ticketLoggedOut: "The stream ticket was revoked with its token by logout; sign in again",
} as const;

export type AuthFailure = keyof typeof AUTH_FAILURES;

/** Failures where no bearer token (or ticket for this path) was sent: RFC 6750 then names no error. */
const NO_CREDENTIAL: ReadonlySet<AuthFailure> = new Set(["missing", "notBearer", "ticketNotHere"]);

export function unauthorized(reason: AuthFailure) {
  const message = AUTH_FAILURES[reason];
  const challenge = NO_CREDENTIAL.has(reason)
    ? 'Bearer realm="api"'
    : `Bearer error="invalid_token", error_description="${message}"`;
  return new AppError(401, "UNAUTHORIZED", message, undefined, { "WWW-Authenticate": challenge });
}
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
      return unauthorized("missing");
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

/** A request no route serves: 404 NOT_FOUND naming its method and path. */
export const noRoute = (c: Context) =>
  new AppError(404, "NOT_FOUND", `No route for ${c.req.method} ${new URL(c.req.url).pathname}`);

export function handleNotFound(c: Context) {
  return handleError(noRoute(c), c);
}
