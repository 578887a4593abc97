import { and, desc, eq, getTableColumns, ne, notExists, type Placeholder, sql } from "drizzle-orm";
import { alias } from "drizzle-orm/sqlite-core";
import type { Database } from "../../db/client";
import { batch, compiled, rowMapper, rowsOf } from "../../db/compiled";
import { type Chatroom, chatrooms, users } from "../../db/schema";
import { branchPage, branchPageStatement } from "../messages";

export const nameKeyOf = (name: string) => name.toLowerCase();

/**
 * A chatroom waiting for its automatic title stores an empty name (the API shows null) and a name key of
 * its own that no name can equal (names are one line, so never hold a line break), so untitled rooms
 * never clash. The column stays NOT NULL: making it nullable means rebuilding the table, and on D1
 * dropping the old chatrooms table would run messages' ON DELETE CASCADE.
 */
export const UNTITLED = "";
const untitledKey = (id: string) => `\n${id}`;

/** The name as the API shows it: null while the room waits for its title. */
export const shownName = (room: Pick<Chatroom, "name">) => (room.name === UNTITLED ? null : room.name);

export type ChatroomSettings = { systemInstruction?: string | null; model?: string | null };

const ownedBy = (userId: string | Placeholder, id: string | Placeholder) =>
  and(eq(chatrooms.id, id), eq(chatrooms.userId, userId));

/** Inserts the room, or returns undefined when the user already has one with that name (any case). */
export async function insertChatroom(
  db: Database,
  room: { id: string; userId: string; name: string | undefined; now: Date } & ChatroomSettings,
) {
  const [created] = await db
    .insert(chatrooms)
    .values({
      id: room.id,
      userId: room.userId,
      name: room.name ?? UNTITLED,
      nameKey: room.name === undefined ? untitledKey(room.id) : nameKeyOf(room.name),
      systemInstruction: room.systemInstruction ?? null,
      model: room.model ?? null,
      createdAt: room.now,
      updatedAt: room.now,
    })
    .onConflictDoNothing()
    .returning();
  return created;
}

const newestFirst = [desc(chatrooms.updatedAt), desc(chatrooms.id)];
const toChatroom = rowMapper(chatrooms);
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

/** The room and the last `limit` messages of its active branch (oldest first), in one round trip. */
export async function findChatroomWithMessages(db: Database, userId: string, id: string, limit: number) {
  const [rooms, recent] = await batch(db, [ownedRoomQuery(db, { userId, id }), branchPageStatement(db, id, limit)]);
  return { room: rowsOf(rooms, toChatroom)[0], recent: branchPage(recent, limit).messages };
}

export type RenameResult = { kind: "renamed"; room: Chatroom } | { kind: "not-found" } | { kind: "taken" };

/**
 * Renames and changes settings (what `change` holds), unless another of the user's rooms has the new
 * name (checked in the same statement).
 */
export async function updateChatroom(
  db: Database,
  userId: string,
  id: string,
  change: { name?: string } & ChatroomSettings,
  now: Date,
): Promise<RenameResult> {
  const other = alias(chatrooms, "other");
  const { name, systemInstruction, model } = change;
  const nameKey = name === undefined ? undefined : nameKeyOf(name);
  const [renamed, existing] = await db.batch([
    db
      .update(chatrooms)
      .set({
        ...(name !== undefined ? { name, nameKey } : {}),
        ...(systemInstruction !== undefined ? { systemInstruction } : {}),
        ...(model !== undefined ? { model } : {}),
        updatedAt: now,
      })
      .where(
        and(
          ownedBy(userId, id),
          nameKey === undefined
            ? undefined
            : notExists(
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

/**
 * Moves the chatroom's active branch through `messageId`, down to the newest leaf beneath it: the newest
 * child at each step, where a prompt's follow-up prompts (sent while it was pending) come before its
 * replies, so the branch follows the conversation rather than stopping at a reply hung beside it. Each
 * step reads a node's children through messages_siblings_idx: `+x.id` keeps SQLite from walking the
 * chatroom's messages newest first by (chatroom_id, id) instead, which made a walk down from the first
 * prompt of a 10,000-message branch quadratic (83 s; 62–106 ms this way). One
 * round trip: the move, the room and the new branch's last `limit` messages. Undefined when the room or
 * the message is not the user's.
 */
export async function switchActiveBranch(db: Database, userId: string, id: string, messageId: string, limit: number) {
  const move = db.$client
    .prepare(
      `WITH RECURSIVE down(id, role, n) AS (
        SELECT id, role, 0 FROM messages WHERE id = ?1 AND chatroom_id = ?2
        UNION ALL
        SELECT c.id, c.role, down.n + 1 FROM down JOIN messages c ON c.id = COALESCE(
          CASE WHEN down.role = 'user' THEN
            (SELECT x.id FROM messages x WHERE x.chatroom_id = ?2 AND x.parent_id = down.id AND x.role = 'user' ORDER BY x.id DESC LIMIT 1)
          END,
          (SELECT x.id FROM messages x WHERE x.chatroom_id = ?2 AND x.parent_id = down.id ORDER BY +x.id DESC LIMIT 1))
      )
      UPDATE chatrooms SET active_leaf_id = (SELECT id FROM down ORDER BY n DESC LIMIT 1)
      WHERE id = ?2 AND user_id = ?3 AND EXISTS (SELECT 1 FROM messages WHERE id = ?1 AND chatroom_id = ?2)
      RETURNING id`,
    )
    .bind(messageId, id, userId);
  const [moved, rooms, recent] = await batch(db, [
    move,
    ownedRoomQuery(db, { userId, id }),
    branchPageStatement(db, id, limit),
  ]);
  const room = rowsOf(rooms, toChatroom)[0];
  if (!room || moved.results.length === 0) return { room, moved: false as const };
  return { room, moved: true as const, recent: branchPage(recent, limit).messages };
}

/**
 * Names a chatroom still waiting for its title with the first of `candidates` (the title, then "title (2)",
 * …) that no other room of the user has, in one statement; never over a name the user set meanwhile.
 * Returns the room as renamed, or undefined when it was not (named already, gone, every candidate taken).
 */
export async function applyTitle(db: Database, id: string, candidates: string[], now: Date) {
  const values = candidates.map((_, i) => `(${i + 1}, ?${i * 2 + 3}, ?${i * 2 + 4})`).join(", ");
  const free = `(SELECT c.%s FROM c WHERE NOT EXISTS (SELECT 1 FROM chatrooms o WHERE o.user_id = chatrooms.user_id AND o.name_key = c.key) ORDER BY c.n LIMIT 1)`;
  const statement = db.$client
    .prepare(
      `WITH c(n, name, key) AS (VALUES ${values})
      UPDATE chatrooms SET name = ${free.replace("%s", "name")}, name_key = ${free.replace("%s", "key")}, updated_at = ?2
      WHERE id = ?1 AND name = '' AND ${free.replace("%s", "name")} IS NOT NULL
      RETURNING *`,
    )
    .bind(id, now.getTime(), ...candidates.flatMap((name) => [name, nameKeyOf(name)]));
  const [renamed] = await batch(db, [statement]);
  return rowsOf(renamed, toChatroom)[0];
}
