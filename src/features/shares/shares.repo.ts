import { and, desc, eq } from "drizzle-orm";
import type { Database } from "../../db/client";
import { batch, rowsOf } from "../../db/compiled";
import { shares } from "../../db/schema";
import { branchPage, branchPageStatement } from "../messages";

/** A share holds at most the last this many messages of the branch. */
export const SHARE_MAX_MESSAGES = 1000;

export type SharedMessage = { role: "user" | "assistant"; content: string; createdAt: string };
export type Share = typeof shares.$inferSelect;

/**
 * The user's chatroom's name and the messages of its active branch a share shows (completed ones, and
 * cancelled ones with text; oldest first, the last 1000 at most): one round trip. Undefined when the
 * chatroom is not the user's.
 */
export async function readShareable(db: Database, userId: string, chatroomId: string) {
  const [room, page] = await batch(db, [
    db.$client.prepare("SELECT name FROM chatrooms WHERE id = ? AND user_id = ?").bind(chatroomId, userId),
    branchPageStatement(db, chatroomId, SHARE_MAX_MESSAGES),
  ]);
  const name = (room.results[0] as { name?: string } | undefined)?.name;
  if (name === undefined) return undefined;
  const messages = branchPage(page, SHARE_MAX_MESSAGES)
    .messages.filter((m) => m.status === "completed" || (m.status === "cancelled" && m.content !== ""))
    .map((m): SharedMessage & { status: string } => ({
      role: m.role,
      content: m.content,
      createdAt: m.createdAt.toISOString(),
      status: m.status,
    }));
  return { name, messages };
}

export async function insertShare(db: Database, share: Share) {
  await db.insert(shares).values(share);
}

export async function listShares(db: Database, userId: string, chatroomId: string) {
  return db
    .select()
    .from(shares)
    .where(and(eq(shares.chatroomId, chatroomId), eq(shares.userId, userId)))
    .orderBy(desc(shares.createdAt), desc(shares.id));
}

/** Revokes (deletes) one of the user's shares of that chatroom; the share as it was, or undefined. */
export async function deleteShare(db: Database, userId: string, chatroomId: string, shareId: string) {
  const [deleted] = await db
    .delete(shares)
    .where(and(eq(shares.id, shareId), eq(shares.chatroomId, chatroomId), eq(shares.userId, userId)))
    .returning();
  return deleted;
}

/** A share as anyone with its id may read it. */
export async function findShare(db: Database, shareId: string) {
  const [result] = await batch(db, [db.$client.prepare("SELECT * FROM shares WHERE id = ?").bind(shareId)]);
  return rowsOf(result, (row) => ({
    id: row.id as string,
    chatroomName: row.chatroom_name as string,
    messages: row.messages as string,
    createdAt: new Date(row.created_at as number),
  }))[0];
}
