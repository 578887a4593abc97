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

export type CachedList = { stamp: string | null; chatrooms: ChatroomDto[] | null };

export async function readChatroomList(kv: KVNamespace, userId: string): Promise<CachedList> {
  const stamp = await kv.get(versionKey(userId));
  if (!stamp) return { stamp: null, chatrooms: null };
  return { stamp, chatrooms: await kv.get<ChatroomDto[]>(listKey(userId, stamp), "json") };
}

/** Stores a list fetched after `stamp` was read. Without a stamp yet, only starts one. */
export async function storeChatroomList(
  kv: KVNamespace,
  userId: string,
  stamp: string | null,
  chatrooms: ChatroomDto[],
) {
  if (!stamp) {
    await kv.put(versionKey(userId), newStamp());
    return;
  }
  await kv.put(listKey(userId, stamp), JSON.stringify(chatrooms), { expirationTtl: LIST_TTL_SECONDS });
}

/** KV takes about one write per second per key; a second change within it is retried once after that. */
const KV_WRITE_WINDOW_MS = 1_100;

/**
 * Called after every change to the user's rooms (create, rename, delete, a new message or reply), when
 * D1 has already committed the change: a failure here must not turn a done change into an error, so it
 * is retried once and otherwise logged.
 */
export async function bumpChatroomList(kv: KVNamespace, userId: string) {
  for (let attempt = 1; ; attempt++) {
    try {
      await kv.put(versionKey(userId), newStamp());
      return;
    } catch (err) {
      if (attempt >= 2) {
        console.error(
          JSON.stringify({ level: "error", message: "chatroom list stamp not written", userId, error: String(err) }),
        );
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, KV_WRITE_WINDOW_MS));
    }
  }
}
