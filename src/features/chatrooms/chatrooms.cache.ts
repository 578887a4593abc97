import type { ChatroomListItemDto } from "./chatrooms.schemas";

/**
 * Each user's chatroom list is cached in Workers KV under the user's *list version*, a counter in D1
 * that triggers on `chatrooms` bump in the same transaction as any change to the user's rooms (create,
 * rename, delete, a send or a reply touching a room's times):
 *
 *   chatrooms:list:<userId>:<version>  → the list as it was at that version
 *
 * A reader asks D1 for the version and, in the same round trip (beside the token check), for the list
 * itself unless the version is one this isolate knows to be cached; the cached list at that known
 * version is read from KV at the same time. So a hit and a miss both take one round trip: the version
 * decides whether the KV answer or the D1 answer is served. A list read from D1 is stored under the
 * version read with it (or before it), so it is at least as new as its version, never older: nobody is
 * served a stale list. Nothing is rewritten on every message: each key is written about once (KV takes
 * one write per second per key). Only when KV has lost a list this isolate stored does a read take a
 * second round trip (to D1).
 */
const listPrefix = (userId: string) => `chatrooms:list:${userId}:`;
const listKey = (userId: string, version: number) => `${listPrefix(userId)}${version}`;
/** Old versions' lists are never read again; let KV drop them. */
const LIST_TTL_SECONDS = 24 * 60 * 60;

const logKvFailure = (message: string, userId: string, err: unknown) =>
  console.error(JSON.stringify({ level: "error", message, userId, error: String(err) }));

/**
 * The cached list at `version` as KV holds it (a JSON array, as `storeChatroomList` wrote it), or
 * undefined: a miss, anything else, or KV failed (then the list comes from D1). Served as it is, the
 * list is never parsed and serialised again.
 */
export async function readChatroomListJson(
  kv: KVNamespace,
  userId: string,
  version: number,
): Promise<string | undefined> {
  try {
    const json = await kv.get(listKey(userId, version));
    return isListJson(json) ? json : undefined;
  } catch (err) {
    logKvFailure("chatroom list not read from the cache", userId, err);
    return undefined;
  }
}

const isListJson = (value: string | null): value is string => !!value?.startsWith("[") && value.endsWith("]");

/** Lists this isolate is storing now, so two concurrent misses write a key once. */
const storing = new Set<string>();

/**
 * Stores a list read from D1 with or after `version`, unless KV already has that version's list (an
 * isolate that has not seen this user yet reads D1 without asking KV; another isolate may have stored
 * it): each key is written once, not once per isolate. `overwrite` replaces what KV has, for when D1
 * was rewound below a version already cached. It only helps the next read, so it never fails.
 */
export async function storeChatroomList(
  kv: KVNamespace,
  userId: string,
  version: number,
  chatrooms: ChatroomListItemDto[],
  { overwrite = false } = {},
) {
  const key = listKey(userId, version);
  if (storing.has(key)) return;
  storing.add(key);
  try {
    if (overwrite || !isListJson(await kv.get(key))) {
      await kv.put(key, JSON.stringify(chatrooms), { expirationTtl: LIST_TTL_SECONDS });
    }
    rememberCachedVersion(userId, version);
  } catch (err) {
    logKvFailure("chatroom list not cached", userId, err);
  } finally {
    storing.delete(key);
  }
}

/**
 * The version whose list this isolate last stored or found in KV, per user: what a reader asks D1 to
 * skip the list for. Bounded; the users seen longest ago are forgotten first (they then read the list
 * from D1 once, in the same round trip as the version).
 */
const cachedVersions = new Map<string, number>();
const MAX_REMEMBERED_USERS = 10_000;

export function knownCachedVersion(userId: string): number | undefined {
  return cachedVersions.get(userId);
}

/**
 * Never lowers what is remembered: a slow store of an older version must not replace a newer one. A
 * user remembered again moves to the back, so the least recently seen are forgotten first.
 */
export function rememberCachedVersion(userId: string, version: number) {
  if ((cachedVersions.get(userId) ?? -1) > version) return;
  cachedVersions.delete(userId);
  cachedVersions.set(userId, version);
  if (cachedVersions.size > MAX_REMEMBERED_USERS) {
    const oldest = cachedVersions.keys().next().value;
    if (oldest !== undefined) cachedVersions.delete(oldest);
  }
}

export function forgetCachedVersion(userId: string, version: number) {
  if (cachedVersions.get(userId) === version) cachedVersions.delete(userId);
}

/**
 * Removes every cached list of the user (the account is deleted): each version's key, found by prefix.
 * Never throws; a key KV would not drop is logged and expires within LIST_TTL_SECONDS, unreadable by
 * anyone (it is read only with the user's own token, which no longer passes).
 */
export async function forgetChatroomLists(kv: KVNamespace, userId: string) {
  cachedVersions.delete(userId);
  try {
    let cursor: string | undefined;
    do {
      const page = await kv.list({ prefix: listPrefix(userId), ...(cursor ? { cursor } : {}) });
      await Promise.all(page.keys.map((key) => kv.delete(key.name)));
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
  } catch (err) {
    logKvFailure("cached chatroom lists not removed", userId, err);
  }
}
