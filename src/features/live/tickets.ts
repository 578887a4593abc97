import { jwtVerify, SignJWT } from "jose";
import { hmacSha256, hs256Key } from "../../lib/crypto";
import { unauthorized } from "../../lib/errors";
import { joseFailure, type TokenClaims } from "../auth";

/** A stream ticket works this long, any number of times. */
export const TICKET_TTL_SECONDS = 300;
const ALGORITHM = "HS256";
const TYPE = "stream-ticket+jwt";
const TICKET_FAILURES = { malformed: "ticketMalformed", invalid: "ticketInvalid", expired: "ticketExpired" } as const;

/**
 * Tickets are signed with a key of their own, derived from JWT_SECRET, so a ticket is never accepted
 * as a bearer token and a bearer token never as a ticket.
 */
async function ticketKey(env: Env): Promise<CryptoKey> {
  if (!env.JWT_SECRET) throw new Error("JWT_SECRET is not configured");
  const secret = env.JWT_SECRET;
  return hs256Key(`ticket:${secret}`, async () => new Uint8Array(await hmacSha256(secret, "stream-ticket/v1")));
}

/**
 * A ticket for one user's streams of one chatroom, bound to the token it was issued with: its version
 * (password change, reset, logout-all) and its id (`tid`, logout) revoke the ticket too.
 */
export async function issueTicket(env: Env, claims: TokenClaims & { chatroomId: string }) {
  const ticket = await new SignJWT({ ver: claims.tokenVersion, room: claims.chatroomId, tid: claims.tokenId })
    .setProtectedHeader({ alg: ALGORITHM, typ: TYPE })
    .setSubject(claims.userId)
    .setIssuedAt()
    .setExpirationTime(`${TICKET_TTL_SECONDS}s`)
    .sign(await ticketKey(env));
  return { ticket, expiresIn: TICKET_TTL_SECONDS };
}

/** The ticket's user and token version, if it is valid for `chatroomId`; otherwise a 401. */
export async function verifyTicket(env: Env, ticket: string, chatroomId: string): Promise<TokenClaims> {
  const verified = await jwtVerify(ticket, await ticketKey(env), {
    algorithms: [ALGORITHM],
    typ: TYPE,
    requiredClaims: ["exp", "sub"],
  }).catch((err: unknown) => {
    throw unauthorized(joseFailure(err, TICKET_FAILURES));
  });
  const payload = verified.payload;
  if (typeof payload.sub !== "string" || !Number.isSafeInteger(payload.ver)) throw unauthorized("ticketMalformed");
  if (payload.room !== chatroomId) throw unauthorized("ticketOtherRoom");
  // Tickets issued before they carried `tid` are ended by their version only; they last 300 s.
  const tokenId = typeof payload.tid === "string" ? payload.tid : undefined;
  return { userId: payload.sub, tokenVersion: payload.ver as number, tokenId, fromTicket: true };
}
