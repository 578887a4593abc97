/**
 * Each user's current token version, cached in Workers KV so authenticating a request needs no D1
 * round trip. D1 stays the source of truth: a missing or lower KV value is re-read from D1.
 */
const tokenVersionKey = (userId: string) => `auth:token-version:${userId}`;

export async function readCachedTokenVersion(kv: KVNamespace, userId: string): Promise<number | undefined> {
  const value = await kv.get(tokenVersionKey(userId));
  const version = value === null ? Number.NaN : Number(value);
  return Number.isSafeInteger(version) ? version : undefined;
}

export async function cacheTokenVersion(kv: KVNamespace, userId: string, version: number) {
  await kv.put(tokenVersionKey(userId), String(version));
}
