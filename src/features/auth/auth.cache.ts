/**
 * Revoked token versions in Workers KV: one key per user and version, written once, when a password change
 * or reset moves the user past that version. Auth reads only the key of the token's own version, so no
 * request writes anything back and none can undo a revocation. A key lives as long as a token: every token
 * of a revoked version was issued before the revocation, so it has expired by the time the key does.
 */
const revokedKey = (userId: string, version: number) => `auth:revoked:${userId}:${version}`;

// KV refuses expirations shorter than 60 s.
const MIN_TTL_SECONDS = 60;

export async function isTokenVersionRevoked(kv: KVNamespace, userId: string, version: number): Promise<boolean> {
  return (await kv.get(revokedKey(userId, version))) !== null;
}

export async function storeRevokedTokenVersion(kv: KVNamespace, userId: string, version: number, ttlSeconds: number) {
  await kv.put(revokedKey(userId, version), "1", {
    expirationTtl: Math.max(MIN_TTL_SECONDS, Math.ceil(ttlSeconds)),
  });
}
