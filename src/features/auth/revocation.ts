import { createDb } from "../../db/client";
import { unauthorized } from "../../lib/errors";
import { findRevocations, type Revocations, storeLoggedOutToken, storeRevokedTokenVersion } from "./auth.cache";
import { findTokenVersion } from "./auth.repo";
import { type TokenClaims, tokenTtlSeconds } from "./tokens";

type WaitUntil = { waitUntil(promise: Promise<unknown>): void };
/**
 * A revocation to store in KV: every token of a version (password change or reset, logout-all), or one
 * token (logout). `neededUntil` (epoch ms) is when every token it covers has expired.
 */
type PendingRevocation = { userId: string; neededUntil: number } & (
  | { version: number; tokenId?: undefined }
  | { tokenId: string; version?: undefined }
);

const RETRY_PAUSE_MS = 100;
const BACKGROUND_RETRY_DELAY_MS = 1_000;

/**
 * Revocations KV refused. Until a background retry lands one, this isolate keeps refusing what it
 * covers (a version: by checking its user against D1; a logged-out token: by its id); see the README's
 * design notes for other isolates.
 */
const pending = new Map<string, PendingRevocation>();
let retryInFlight = false;

const pendingKey = (entry: PendingRevocation) =>
  entry.tokenId === undefined ? `version:${entry.userId}:${entry.version}` : `token:${entry.tokenId}`;

function logFailure(message: string, err: unknown, entry: PendingRevocation) {
  const error = err instanceof Error ? err.message : String(err);
  const { userId, version } = entry;
  console.error(
    JSON.stringify({ level: "error", message, userId, version, logout: entry.tokenId !== undefined, error }),
  );
}

async function store(env: Env, entry: PendingRevocation): Promise<boolean> {
  const ttl = (entry.neededUntil - Date.now()) / 1000;
  if (ttl <= 0) return true; // every token it covers has expired: nothing left to revoke
  try {
    if (entry.tokenId === undefined) await storeRevokedTokenVersion(env.CACHE, entry.userId, entry.version, ttl);
    else await storeLoggedOutToken(env.CACHE, entry.tokenId, ttl);
    return true;
  } catch (err) {
    logFailure("Storing a token revocation in KV failed", err, entry);
    return false;
  }
}

/** Never throws: if KV refuses the write twice, this isolate remembers the revocation and keeps retrying it. */
async function revoke(env: Env, ctx: WaitUntil, entry: PendingRevocation) {
  if (await store(env, entry)) return;
  await scheduler.wait(RETRY_PAUSE_MS);
  if (await store(env, entry)) return;
  pending.set(pendingKey(entry), entry);
  ctx.waitUntil(scheduler.wait(BACKGROUND_RETRY_DELAY_MS).then(() => retryPendingRevocations(env)));
}

/** Makes every token of `version` stop working. Call it after D1 moved the user past that version. */
export async function revokeTokenVersion(env: Env, ctx: WaitUntil, userId: string, version: number) {
  await revoke(env, ctx, { userId, version, neededUntil: Date.now() + tokenTtlSeconds(env) * 1000 });
}

/** Makes one token stop working (logout), until it expires (`expiresAt`, epoch seconds). */
export async function revokeToken(env: Env, ctx: WaitUntil, userId: string, tokenId: string, expiresAt: number) {
  await revoke(env, ctx, { userId, tokenId, neededUntil: expiresAt * 1000 });
}

/** One retry of the pending revocations at a time per isolate, whatever the number of requests. */
async function retryPendingRevocations(env: Env) {
  if (retryInFlight) return;
  retryInFlight = true;
  try {
    for (const [key, entry] of pending) {
      if (await store(env, entry)) pending.delete(key);
    }
  } finally {
    retryInFlight = false;
  }
}

function hasPendingVersionRevocation(userId: string) {
  for (const entry of pending.values()) if (entry.tokenId === undefined && entry.userId === userId) return true;
  return false;
}

const revokedFailure = (claims: TokenClaims) => unauthorized(claims.fromTicket ? "ticketRevoked" : "revoked");
const loggedOutFailure = (claims: TokenClaims) => unauthorized(claims.fromTicket ? "ticketLoggedOut" : "loggedOut");

/**
 * D1 is the record of versions: a token is current when it carries the user's token version. Asked of
 * the primary, never of a replica a client's bookmark may point at.
 */
async function ensureCurrentInD1(env: Env, claims: TokenClaims) {
  const current = await findTokenVersion(createDb(env.DB), claims.userId);
  if (current === undefined || claims.tokenVersion !== current) throw revokedFailure(claims);
}

/** The token's revocation keys, or undefined when KV cannot be read. */
async function readRevocations(env: Env, claims: TokenClaims): Promise<Revocations | undefined> {
  try {
    return await findRevocations(env.CACHE, claims.userId, claims.tokenVersion, claims.tokenId);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    console.error(JSON.stringify({ level: "error", message: "KV read failed; checking the token in D1", error }));
    return undefined;
  }
}

/**
 * Refuses tokens (and stream tickets) of a revoked version and logged-out tokens: one KV request (both
 * keys in one bulk read), no D1 round trip. D1 answers for the version instead when KV cannot (a read
 * error, or a revocation of this user that KV has not taken yet), and for tokens minted before
 * revocations were stored per version; it is then asked together with KV, not after it.
 */
export async function ensureTokenCurrent(env: Env, ctx: WaitUntil, claims: TokenClaims) {
  if (pending.size > 0) ctx.waitUntil(retryPendingRevocations(env));
  if (claims.tokenId !== undefined && pending.has(`token:${claims.tokenId}`)) throw loggedOutFailure(claims);
  const askD1 = claims.issuedBeforeRevocationKeys === true || hasPendingVersionRevocation(claims.userId);
  const [found] = await Promise.all([readRevocations(env, claims), askD1 ? ensureCurrentInD1(env, claims) : undefined]);
  if (found === undefined) {
    // Logouts live only in KV: while it cannot be read, a logged-out token passes (README, design notes).
    if (!askD1) await ensureCurrentInD1(env, claims);
    return;
  }
  if (found.token) throw loggedOutFailure(claims);
  if (found.version) throw revokedFailure(claims);
}
