import { jwtVerify, SignJWT } from "jose";
import { hs256Key } from "../../lib/crypto";
import { type AuthFailure, unauthorized } from "../../lib/errors";

const ALGORITHM = "HS256";
const ISSUER = "gemini-backend";
const DEFAULT_TTL_SECONDS = 86_400;

export type TokenClaims = {
  userId: string;
  tokenVersion: number;
  /** Minted before revocations were stored per version (no `rvk` claim): checked against D1 instead. */
  issuedBeforeRevocationKeys?: boolean;
  /** A stream ticket's claims, so a 401 speaks of the ticket. */
  fromTicket?: boolean;
  /** The token's `jti`, which logout revokes; a ticket carries the one of the token it was issued with. */
  tokenId?: string;
  /** The token's `exp` (epoch seconds). */
  expiresAt?: number;
};

function signingKey(env: Env): Promise<CryptoKey> {
  if (!env.JWT_SECRET) {
    // A deployment without its secret is our fault, not the client's: answer 500 and log it.
    throw new Error("JWT_SECRET is not configured");
  }
  const secret = env.JWT_SECRET;
  return hs256Key(`token:${secret}`, () => new TextEncoder().encode(secret));
}

export function tokenTtlSeconds(env: Env): number {
  const ttl = Number(env.JWT_TTL_SECONDS);
  return Number.isInteger(ttl) && ttl > 0 ? ttl : DEFAULT_TTL_SECONDS;
}

export async function issueToken(env: Env, claims: TokenClaims) {
  const expiresIn = tokenTtlSeconds(env);
  // rvk: revoked through per-version KV keys (see revocation.ts); tokens without it predate them.
  const authToken = await new SignJWT({ ver: claims.tokenVersion, rvk: 1 })
    .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
    .setSubject(claims.userId)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${expiresIn}s`)
    .setJti(crypto.randomUUID())
    .sign(await signingKey(env));
  return { authToken, tokenType: "Bearer" as const, expiresIn };
}

/**
 * Which 401 a jose failure is. jose checks the signature before the claims, so a forged token is
 * "invalid" even when its claims have expired too.
 */
export function joseFailure(err: unknown, as: { malformed: AuthFailure; invalid: AuthFailure; expired: AuthFailure }) {
  const { code, claim } = (err ?? {}) as { code?: string; claim?: string };
  if (code === "ERR_JWT_EXPIRED") return as.expired;
  if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" || code === "ERR_JOSE_ALG_NOT_ALLOWED") return as.invalid;
  if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && (claim === "iss" || claim === "typ")) return as.invalid;
  return as.malformed;
}

const TOKEN_FAILURES = { malformed: "malformed", invalid: "invalid", expired: "expired" } as const;

/** Verifies signature, algorithm and expiry; any failure is a 401 saying which, never a 500. */
export async function verifyToken(env: Env, token: string): Promise<TokenClaims> {
  const key = await signingKey(env);
  // Everything jwtVerify can throw here comes from the token itself (malformed, forged, expired).
  const verified = await jwtVerify(token, key, {
    algorithms: [ALGORITHM],
    issuer: ISSUER,
    // Every token issueToken ever made has a jti; logout revokes by it.
    requiredClaims: ["exp", "iat", "sub", "jti"],
  }).catch((err: unknown) => {
    throw unauthorized(joseFailure(err, TOKEN_FAILURES));
  });
  const payload = verified.payload;
  if (typeof payload.sub !== "string" || !Number.isSafeInteger(payload.ver) || typeof payload.jti !== "string") {
    throw unauthorized("malformed");
  }
  const claims: TokenClaims = {
    userId: payload.sub,
    tokenVersion: payload.ver as number,
    tokenId: payload.jti,
    expiresAt: payload.exp,
  };
  if (payload.rvk !== 1) claims.issuedBeforeRevocationKeys = true;
  return claims;
}
