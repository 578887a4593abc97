import type { ChatroomDto } from "./chatrooms.schemas";

/**
 * Each user's chatroom list is cached in Workers KV under the user's *list version*, a counter in D1
 * that triggers on `chatrooms` bump in the same transaction as any change to the user's rooms (create,
 * rename, delete, a send or a reply touching a room's times):
 *
 *   chatrooms:list:<userId>:<version>  → the list as it was at that version
 *
 * A reader reads the version first (from D1, beside the token check), then the list at that version;
 * on a miss it reads D1 and stores what it read under the version it started with. Such a list is at
 * least as new as its version, never older, so nobody is served a stale list, and nothing is rewritten
 * on every message: each key is written about once (KV takes one write per second per key).
 */
const listKey = (userId: string, version: number) => `chatrooms:list:${userId}:${version}`;
/** Old versions' lists are never read again; let KV drop them. */
const LIST_TTL_SECONDS = 24 * 60 * 60;

const logKvFailure = (message: string, userId: string, err: unknown) =>
  console.error(JSON.stringify({ level: "error", message, userId, error: String(err) }));

/** The cached list at `version`, or undefined (a miss, or KV failed: then the list comes from D1). */
export async function readChatroomList(
  kv: KVNamespace,
  userId: string,
  version: number,
): Promise<ChatroomDto[] | undefined> {
  try {
    return (await kv.get<ChatroomDto[]>(listKey(userId, version), "json")) ?? undefined;
  } catch (err) {
    logKvFailure("chatroom list not read from the cache", userId, err);
    return undefined;
  }
}

/** Stores a list read from D1 after `version` was read. It only helps the next read, so it never fails. */
export async function storeChatroomList(kv: KVNamespace, userId: string, version: number, chatrooms: ChatroomDto[]) {
  try {
    await kv.put(listKey(userId, version), JSON.stringify(chatrooms), { expirationTtl: LIST_TTL_SECONDS });
  } catch (err) {
    logKvFailure("chatroom list not cached", userId, err);
  }
}
