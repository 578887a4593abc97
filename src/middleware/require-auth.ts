import { createMiddleware } from "hono/factory";
import { ensureTokenCurrent } from "../features/auth/revocation";
import { verifyToken } from "../features/auth/tokens";
import { verifyTicket } from "../features/live/tickets";
import { unauthorized } from "../lib/errors";
import type { AppEnv } from "../types";

/**
 * The two live-stream GETs, the only requests a stream ticket (`?ticket=`) opens: browsers cannot set
 * headers on an EventSource. The ticket must be for the chatroom in the path.
 */
const TICKET_PATH = /\/chatroom\/([^/]+)\/(?:events|message\/[^/]+\/stream)\/?$/;

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
      throw unauthorized();
    }
    claims = await verifyTicket(c.env, ticket, room);
  } else {
    const match = /^Bearer +([^\s]+) *$/i.exec(header ?? "");
    if (!match?.[1]) throw unauthorized();
    claims = await verifyToken(c.env, match[1]);
  }
  await ensureTokenCurrent(c.env, c.var.db, c.executionCtx, claims);
  c.set("userId", claims.userId);
  c.set("tokenVersion", claims.tokenVersion);
  await next();
});
