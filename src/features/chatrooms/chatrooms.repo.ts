import { and, desc, eq, getTableColumns, lt, ne, notExists, type Placeholder, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Database } from "../../db/client";
import { batch, compiled, rowMapper, rowsOf } from "../../db/compiled";
import { type Chatroom, chatrooms, messages, users } from "../../db/schema";

export const nameKeyOf = (name: string) => name.toLowerCase();

const ownedBy = (userId: string | Placeholder, id: string | Placeholder) =>
  and(eq(chatrooms.id, id), eq(chatrooms.userId, userId));

/** Inserts the room, or returns undefined when the user already has one with that name (any case). */
export async function insertChatroom(db: Database, room: { id: string; userId: string; name: string; now: Date }) {
  const [created] = await db
    .insert(chatrooms)
    .values({
      id: room.id,
      userId: room.userId,
      name: room.name,
      nameKey: nameKeyOf(room.name),
      createdAt: room.now,
      updatedAt: room.now,
    })
    .onConflictDoNothing()
    .returning();
  return created;
}

const newestFirst = [desc(chatrooms.updatedAt), desc(chatrooms.id)];
const toChatroom = rowMapper(chatrooms);
const toMessage = rowMapper(messages);
const userIdValue = sql.placeholder("userId");
const roomIdValue = sql.placeholder("id");

// The hot reads' queries, compiled once per isolate (src/db/compiled.ts).
const listVersionQuery = compiled<"userId">((db) =>
  db.select({ version: users.listVersion }).from(users).where(eq(users.id, userIdValue)),
);
const roomsQuery = compiled<"userId">((db) =>
  db
    .select()
    .from(chatrooms)
    .where(eq(chatrooms.userId, userIdValue))
    .orderBy(...newestFirst),
);
/**
 * The user's rooms, none when the user's list version is still `version`. The version is checked
 * through a join on the user's row, which SQLite reads first: an unchanged version costs 2 rows read,
 * not a pass over the user's rooms.
 */
const roomsUnlessVersionQuery = compiled<"userId" | "version">((db) =>
  db
    .select(getTableColumns(chatrooms))
    .from(chatrooms)
    .innerJoin(users, and(eq(users.id, chatrooms.userId), ne(users.listVersion, sql.placeholder("version"))))
    .where(eq(chatrooms.userId, userIdValue))
    .orderBy(...newestFirst),
);
const ownedRoomQuery = compiled<"userId" | "id">((db) =>
  db.select().from(chatrooms).where(ownedBy(userIdValue, roomIdValue)),
);
/** A room's newest messages, newest first; `before`: only those older than a message id. */
const messagesQuery = <V extends string>(before: boolean) =>
  compiled<V>((db) =>
    db
      .select()
      .from(messages)
      .where(and(eq(messages.chatroomId, roomIdValue), before ? lt(messages.id, sql.placeholder("before")) : undefined))
      .orderBy(desc(messages.id))
      .limit(sql.placeholder("limit")),
  );
const newestMessagesQuery = messagesQuery<"id" | "limit">(false);
const messagesBeforeQuery = messagesQuery<"id" | "before" | "limit">(true);

/**
 * The version the user's cached chatroom list is keyed by (bumped by triggers on any room change) and,
 * in the same round trip and snapshot, the list itself, unless the version is still `cachedVersion`
 * (then `rooms` is undefined: the caller has that version's list from the cache).
 */
export async function findListVersionAndRooms(
  db: Database,
  userId: string,
  cachedVersion: number | undefined,
): Promise<{ version: number; rooms?: Chatroom[] }> {
  const [versions, rooms] = await batch(db, [
    listVersionQuery(db, { userId }),
    cachedVersion === undefined
      ? roomsQuery(db, { userId })
      : roomsUnlessVersionQuery(db, { userId, version: cachedVersion }),
  ]);
  const version = (versions.results[0] as { list_version?: number } | undefined)?.list_version ?? 0;
  return { version, rooms: version === cachedVersion ? undefined : rowsOf(rooms, toChatroom) };
}

export async function listChatrooms(db: Database, userId: string): Promise<Chatroom[]> {
  return rowsOf(await roomsQuery(db, { userId }).all(), toChatroom);
}

/** The room and its newest messages (newest first), in one round trip. */
export async function findChatroomWithMessages(db: Database, userId: string, id: string, limit: number) {
  const [rooms, recent] = await batch(db, [ownedRoomQuery(db, { userId, id }), newestMessagesQuery(db, { id, limit })]);
  return { room: rowsOf(rooms, toChatroom)[0], recent: rowsOf(recent, toMessage) };
}

/** One page of messages older than `before` (newest first, one extra to tell whether more exist). */
export async function findMessagePage(db: Database, userId: string, id: string, limit: number, before?: string) {
  const [rooms, page] = await batch(db, [
    ownedRoomQuery(db, { userId, id }),
    before === undefined
      ? newestMessagesQuery(db, { id, limit: limit + 1 })
      : messagesBeforeQuery(db, { id, before, limit: limit + 1 }),
  ]);
  return { exists: rooms.results.length === 1, page: rowsOf(page, toMessage) };
}

export type RenameResult = { kind: "renamed"; room: Chatroom } | { kind: "not-found" } | { kind: "taken" };

/** Renames unless another of the user's rooms has the name (checked in the same statement). */
export async function renameChatroom(
  db: Database,
  userId: string,
  id: string,
  name: string,
  now: Date,
): Promise<RenameResult> {
  const other = alias(chatrooms, "other");
  const nameKey = nameKeyOf(name);
  const [renamed, existing] = await db.batch([
    db
      .update(chatrooms)
      .set({ name, nameKey, updatedAt: now })
      .where(
        and(
          ownedBy(userId, id),
          notExists(
            db
              .select({ one: sql`1` })
              .from(other)
              .where(and(eq(other.userId, userId), eq(other.nameKey, nameKey), ne(other.id, id))),
          ),
        ),
      )
      .returning(),
    db.select({ id: chatrooms.id }).from(chatrooms).where(ownedBy(userId, id)),
  ]);
  const [room] = renamed;
  if (room) return { kind: "renamed", room };
  return existing.length ? { kind: "taken" } : { kind: "not-found" };
}

/** Deletes the room; its messages go with it (ON DELETE CASCADE). */
export async function deleteChatroom(db: Database, userId: string, id: string): Promise<boolean> {
  const deleted = await db.delete(chatrooms).where(ownedBy(userId, id)).returning({ id: chatrooms.id });
  return deleted.length === 1;
}

export async function chatroomExists(db: Database, userId: string, id: string): Promise<boolean> {
  const rooms = await db.select({ id: chatrooms.id }).from(chatrooms).where(ownedBy(userId, id));
  return rooms.length === 1;
}

/** The ids of every chatroom of the user (whose hubs are told when the user's tokens are revoked). */
export async function listChatroomIds(db: Database, userId: string): Promise<string[]> {
  const rooms = await db.select({ id: chatrooms.id }).from(chatrooms).where(eq(chatrooms.userId, userId));
  return rooms.map((room) => room.id);
}
