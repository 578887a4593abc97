import type { Defer } from "../../lib/defer";
import type { ChatroomDto } from "./chatrooms.schemas";

/**
 * Each user's chatroom list is cached in Workers KV under a key that carries a version stamp:
 *
 *   chatrooms:version:<userId>         → the current stamp
 *   chatrooms:list:<userId>:<stamp>    → the list as it was when that stamp was current
 *
 * Every change to the user's rooms writes a new stamp instead of deleting the list. A list is only
 * ever written under the stamp read *before* D1 was queried, so a slow reader that fetched an old list
 * can only store it under a stamp that is already superseded: nobody reads it again. Deleting a
 * single key instead would let such a reader put the old list back after the delete. KV makes a write
 * visible at once in the location that made it (the owner's), which is where their next read goes.
 */
const versionKey = (userId: string) => `chatrooms:version:${userId}`;
const listKey = (userId: string, stamp: string) => `chatrooms:list:${userId}:${stamp}`;
/** Old stamps' lists are never read again; let KV drop them. */
const LIST_TTL_SECONDS = 24 * 60 * 60;

const newStamp = () => `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;

export type CachedList = { stamp: string | null; chatrooms: ChatroomDto[] | null; failed?: true };

const logKvFailure = (message: string, userId: string, err: unknown) =>
  console.error(JSON.stringify({ level: "error", message, userId, error: String(err) }));

/** The cached list, or a miss (`stamp: null` also when KV failed: then nothing is stored either). */
export async function readChatroomList(kv: KVNamespace, userId: string): Promise<CachedList> {
  try {
    const stamp = await kv.get(versionKey(userId));
    if (!stamp) return { stamp: null, chatrooms: null };
    return { stamp, chatrooms: await kv.get<ChatroomDto[]>(listKey(userId, stamp), "json") };
  } catch (err) {
    logKvFailure("chatroom list not read from the cache", userId, err);
    return { stamp: null, chatrooms: null, failed: true };
  }
}

/**
 * Stores a list fetched after `stamp` was read (without a stamp yet, only starts one). It only helps
 * the next read, so it never fails: a refused write is logged.
 */
export async function storeChatroomList(
  kv: KVNamespace,
  userId: string,
  stamp: string | null,
  chatrooms: ChatroomDto[],
) {
  try {
    if (!stamp) await kv.put(versionKey(userId), newStamp());
    else await kv.put(listKey(userId, stamp), JSON.stringify(chatrooms), { expirationTtl: LIST_TTL_SECONDS });
  } catch (err) {
    logKvFailure("chatroom list not cached", userId, err);
  }
}

/** KV takes about one write per second per key; a second change within it is retried once after that. */
const KV_WRITE_WINDOW_MS = 1_100;

/**
 * Called after every change to the user's rooms (create, rename, delete, a new message or reply), when
 * D1 has already committed the change: a failure here must not turn a done change into an error or
 * hold the response. The first write is made at once (the owner's next read must see the change); a
 * refused one is retried once after KV's per-key window, through `defer` (waitUntil) when given.
 */
export async function bumpChatroomList(kv: KVNamespace, userId: string, defer?: Defer) {
  try {
    await kv.put(versionKey(userId), newStamp());
    return;
  } catch {}
  const retry = new Promise((resolve) => setTimeout(resolve, KV_WRITE_WINDOW_MS))
    .then(() => kv.put(versionKey(userId), newStamp()))
    .catch((err) => logKvFailure("chatroom list stamp not written", userId, err));
  if (defer) defer(retry);
  else await retry;
}
