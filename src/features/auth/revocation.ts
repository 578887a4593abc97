import type { Database } from "../../db/client";
import { unauthorized } from "../../lib/errors";
import { isTokenVersionRevoked, storeRevokedTokenVersion } from "./auth.cache";
import { findTokenVersion } from "./auth.repo";
import { type TokenClaims, tokenTtlSeconds } from "./tokens";

type WaitUntil = { waitUntil(promise: Promise<unknown>): void };
type PendingRevocation = { userId: string; version: number; revokedAt: number };

const RETRY_PAUSE_MS = 100;
const BACKGROUND_RETRY_DELAY_MS = 1_000;

/**
 * Revocations D1 has but KV refused. Until a background retry lands one, this isolate checks its user
 * against D1, so the old tokens stay refused here; see the README's design notes for other isolates.
 */
const pending = new Map<string, PendingRevocation>();
let retryInFlight = false;

function logFailure(message: string, err: unknown, entry: PendingRevocation) {
  const error = err instanceof Error ? err.message : String(err);
  console.error(JSON.stringify({ level: "error", message, userId: entry.userId, version: entry.version, error }));
}

async function store(env: Env, entry: PendingRevocation): Promise<boolean> {
  const ttl = tokenTtlSeconds(env) - (Date.now() - entry.revokedAt) / 1000;
  if (ttl <= 0) return true; // every token of that version has expired: nothing left to revoke
  try {
    await storeRevokedTokenVersion(env.CACHE, entry.userId, entry.version, ttl);
    return true;
  } catch (err) {
    logFailure("Storing a token revocation in KV failed", err, entry);
    return false;
  }
}

/**
 * Makes every token of `version` stop working. Call it after D1 moved the user past that version. Never
 * throws: if KV refuses the write twice, this isolate remembers the revocation and keeps retrying it.
 */
export async function revokeTokenVersion(env: Env, ctx: WaitUntil, userId: string, version: number) {
  const entry = { userId, version, revokedAt: Date.now() };
  if (await store(env, entry)) return;
  await scheduler.wait(RETRY_PAUSE_MS);
  if (await store(env, entry)) return;
  pending.set(`${userId}:${version}`, entry);
  ctx.waitUntil(scheduler.wait(BACKGROUND_RETRY_DELAY_MS).then(() => retryPendingRevocations(env)));
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

function hasPendingRevocation(userId: string) {
  for (const entry of pending.values()) if (entry.userId === userId) return true;
  return false;
}

const revokedFailure = (claims: TokenClaims) => unauthorized(claims.fromTicket ? "ticketRevoked" : "revoked");

/** D1 is the record: a token is current when it carries the user's token version. */
async function ensureCurrentInD1(db: Database, claims: TokenClaims) {
  const current = await findTokenVersion(db, claims.userId);
  if (current === undefined || claims.tokenVersion !== current) throw revokedFailure(claims);
}

/**
 * Refuses tokens of a revoked version: one KV read, no D1 round trip. D1 answers instead when KV cannot
 * (a read error, or a revocation of this user that KV has not taken yet), and for tokens minted before
 * revocations were stored per version.
 */
export async function ensureTokenCurrent(env: Env, db: Database, ctx: WaitUntil, claims: TokenClaims) {
  if (pending.size > 0) ctx.waitUntil(retryPendingRevocations(env));
  if (claims.issuedBeforeRevocationKeys || hasPendingRevocation(claims.userId)) {
    return ensureCurrentInD1(db, claims);
  }
  let revoked: boolean;
  try {
    revoked = await isTokenVersionRevoked(env.CACHE, claims.userId, claims.tokenVersion);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    console.error(JSON.stringify({ level: "error", message: "KV read failed; checking the token in D1", error }));
    return ensureCurrentInD1(db, claims);
  }
  if (revoked) throw revokedFailure(claims);
}
