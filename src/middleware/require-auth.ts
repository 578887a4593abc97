import { createMiddleware } from "hono/factory";
import { ensureTokenCurrent, verifyToken } from "../features/auth";
import { verifyTicket } from "../features/live";
import { unauthorized } from "../lib/errors";
import type { AppEnv } from "../types";

/**
 * The two live-stream GETs, the only requests a stream ticket (`?ticket=`) opens: browsers cannot set
 * headers on an EventSource. The ticket must be for the chatroom in the path.
 */
const TICKET_PATH = /\/chatroom\/([^/]+)\/(?:events|message\/[^/]+\/stream)\/?$/;

/** The bearer token in an Authorization header; a 401 saying what is wrong with the header otherwise. */
function bearerToken(header: string | undefined, ticketSent: boolean): string {
  if (!header) throw unauthorized(ticketSent ? "ticketNotHere" : "missing");
  const [scheme = "", ...rest] = header.trim().split(/ +/);
  if (scheme.toLowerCase() !== "bearer") throw unauthorized("notBearer");
  const [token] = rest;
  if (!token || rest.length > 1) throw unauthorized("malformed");
  return token;
}

export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("Authorization");
  const ticket = c.req.query("ticket");
  const ticketRoom = c.req.method === "GET" ? TICKET_PATH.exec(c.req.path)?.[1] : undefined;
  let claims: Awaited<ReturnType<typeof verifyToken>>;
  if (!header && ticket && ticketRoom) {
    let room: string;
    try {
      room = decodeURIComponent(ticketRoom);
    } catch {
      throw unauthorized("ticketOtherRoom");
    }
    claims = await verifyTicket(c.env, ticket, room);
  } else {
    claims = await verifyToken(c.env, bearerToken(header, ticket !== undefined));
  }
  const current = ensureTokenCurrent(c.env, c.var.db, c.executionCtx, claims);
  c.set("userId", claims.userId);
  c.set("tokenVersion", claims.tokenVersion);
  c.set("tokenId", claims.tokenId);
  c.set("tokenExpiresAt", claims.fromTicket ? undefined : claims.expiresAt);
  if (!readsOnly(c.req.raw)) {
    await current;
    return next();
  }
  // A plain read changes nothing, so it runs while the revocation check (a KV read) is in flight,
  // saving a round trip; its answer is thrown away if the token turns out to be revoked.
  const revoked = current.then(
    () => undefined,
    (err: unknown) => err,
  );
  await next();
  const failure = await revoked;
  if (failure) {
    await c.res.body?.cancel().catch(() => {});
    throw failure;
  }
});

/**
 * GET and HEAD requests that answer at once: not a stream, WebSocket or long-poll, which hold
 * something open and must not start for a revoked token.
 */
function readsOnly(request: Request): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  if (request.headers.get("Upgrade") || request.headers.get("Accept")?.includes("text/event-stream")) return false;
  const url = new URL(request.url);
  return !url.searchParams.has("wait") && !/\/(events|stream)\/?$/.test(url.pathname);
}
