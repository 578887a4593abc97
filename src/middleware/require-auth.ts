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
  // Most requests have no query string: then there is no ticket or wait to look for.
  const hasQuery = c.req.url.includes("?");
  const ticket = hasQuery ? c.req.query("ticket") : undefined;
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
  const current = ensureTokenCurrent(c.env, c.executionCtx, claims);
  const authenticate = () => {
    c.set("userId", claims.userId);
    c.set("tokenVersion", claims.tokenVersion);
    c.set("tokenId", claims.tokenId);
    c.set("tokenExpiresAt", claims.fromTicket ? undefined : claims.expiresAt);
  };
  if (!readsOnly(c.req.method, c.req.path, c.req.raw.headers, hasQuery ? c.req.query("wait") : undefined)) {
    await current;
    authenticate();
    return next();
  }
  authenticate();
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
    // Nothing of the discarded answer (its headers included) goes out with the 401, nor is the
    // request logged as the token's user.
    for (const name of [...c.res.headers.keys()]) {
      if (!KEPT_ON_DISCARD.test(name)) c.res.headers.delete(name);
    }
    c.set("userId", undefined as unknown as string);
    throw failure;
  }
});

/** Headers of a discarded answer that belong to the request, not to the answer (Hono copies the rest). */
const KEPT_ON_DISCARD = /^(access-control-|x-request-id$|vary$)/i;

/**
 * GET and HEAD requests that answer at once: not a stream, WebSocket or long-poll, which hold
 * something open and must not start for a revoked token.
 */
function readsOnly(method: string, path: string, headers: Headers, wait: string | undefined): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  if (headers.get("Upgrade") || headers.get("Accept")?.includes("text/event-stream")) return false;
  // The decoded path, as routing sees it (`…/even%74s` is `…/events`).
  return wait === undefined && !/\/(events|stream)\/?$/.test(path);
}
