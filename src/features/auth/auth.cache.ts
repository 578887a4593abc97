/**
 * Revoked tokens in Workers KV, so auth needs no D1 read. Two kinds of key, each written once:
 * - `auth:revoked:<user>:<version>`: every token of that version, when a password change, a reset or
 *   logout-all moves the user past it. A key lives as long as a token: every token of a revoked version
 *   was issued before the revocation, so it has expired by the time the key does.
 * - `auth:logout:<jti>`: one token, ended by logout; kept until that token's own expiry.
 * Auth reads only the keys of the token it was given, so no request writes anything back and none can undo
 * a revocation.
 */
const revokedKey = (userId: string, version: number) => `auth:revoked:${userId}:${version}`;
const loggedOutKey = (tokenId: string) => `auth:logout:${tokenId}`;

// KV refuses expirations shorter than 60 s.
const MIN_TTL_SECONDS = 60;
const ttl = (seconds: number) => ({ expirationTtl: Math.max(MIN_TTL_SECONDS, Math.ceil(seconds)) });

export type Revocations = { version: boolean; token: boolean };

/**
 * Whether the token's version, and the token itself, were revoked: one KV request (a bulk read of both
 * keys, billed as two reads).
 */
export async function findRevocations(
  kv: KVNamespace,
  userId: string,
  version: number,
  tokenId: string | undefined,
): Promise<Revocations> {
  if (tokenId === undefined) return { version: (await kv.get(revokedKey(userId, version))) !== null, token: false };
  const found = await kv.get([revokedKey(userId, version), loggedOutKey(tokenId)]);
  return {
    version: (found.get(revokedKey(userId, version)) ?? null) !== null,
    token: (found.get(loggedOutKey(tokenId)) ?? null) !== null,
  };
}

export async function storeRevokedTokenVersion(kv: KVNamespace, userId: string, version: number, ttlSeconds: number) {
  await kv.put(revokedKey(userId, version), "1", ttl(ttlSeconds));
}

export async function storeLoggedOutToken(kv: KVNamespace, tokenId: string, ttlSeconds: number) {
  await kv.put(loggedOutKey(tokenId), "1", ttl(ttlSeconds));
}
