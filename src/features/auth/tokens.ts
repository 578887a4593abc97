import { jwtVerify, SignJWT } from "jose";
import type { Database } from "../../db/client";
import { unauthorized } from "../../lib/errors";
import { cacheTokenVersion, readCachedTokenVersion } from "./auth.cache";
import { findTokenVersion } from "./auth.repo";

const ALGORITHM = "HS256";
const ISSUER = "gemini-backend";
const DEFAULT_TTL_SECONDS = 86_400;

export type TokenClaims = { userId: string; tokenVersion: number };

function signingKey(env: Env): Uint8Array {
  if (!env.JWT_SECRET) {
    // A deployment without its secret is our fault, not the client's: answer 500 and log it.
    throw new Error("JWT_SECRET is not configured");
  }
  return new TextEncoder().encode(env.JWT_SECRET);
}

export function tokenTtlSeconds(env: Env): number {
  const ttl = Number(env.JWT_TTL_SECONDS);
  return Number.isInteger(ttl) && ttl > 0 ? ttl : DEFAULT_TTL_SECONDS;
}

export async function issueToken(env: Env, claims: TokenClaims) {
  const expiresIn = tokenTtlSeconds(env);
  const authToken = await new SignJWT({ ver: claims.tokenVersion })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${expiresIn}s`)
    .setJti(crypto.randomUUID())
    .sign(signingKey(env));
  return { authToken, tokenType: "Bearer" as const, expiresIn };
}

/** Verifies signature, algorithm and expiry; any failure is a 401, never a 500. */
export async function verifyToken(env: Env, token: string): Promise<TokenClaims> {
  const key = signingKey(env);
  // Everything jwtVerify can throw here comes from the token itself (malformed, forged, expired).
  const verified = await jwtVerify(token, key, {
    algorithms: [ALGORITHM],
    issuer: ISSUER,
    requiredClaims: ["exp", "iat", "sub"],
  }).catch(() => undefined);
  const payload = verified?.payload;
  if (!payload || typeof payload.sub !== "string" || !Number.isSafeInteger(payload.ver)) throw unauthorized();
  return { userId: payload.sub, tokenVersion: payload.ver as number };
}

/**
 * Refuses tokens minted before the user's last password change or reset. KV answers the common
 * case without touching D1; a missing or older KV value falls back to D1 and refreshes KV.
 */
export async function ensureTokenCurrent(env: Env, db: Database, claims: TokenClaims) {
  const cached = await readCachedTokenVersion(env.CACHE, claims.userId);
  if (cached !== undefined && claims.tokenVersion < cached) throw unauthorized();
  if (cached === claims.tokenVersion) return;
  const current = await findTokenVersion(db, claims.userId);
  if (current === undefined || claims.tokenVersion !== current) throw unauthorized();
  await cacheTokenVersion(env.CACHE, claims.userId, current);
}
