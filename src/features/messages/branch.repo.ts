import type { Database } from "../../db/client";
import { rowMapper } from "../../db/compiled";
import { type Message, messages } from "../../db/schema";

/**
 * A chatroom is a tree of messages (API.md, "Branches"): every message names its parent, and the
 * chatroom its active leaf. The active branch is the path from the root to that leaf, listed in branch
 * order: each message after the one it follows. A prompt on the path whose next message on it is
 * another prompt (it was still pending when that one was sent) has its current run's reply listed right
 * after it, hung beside the path, so every message of the conversation shows and each prompt is followed by
 * its own answer.
 *
 * Every read here walks parent links upward from a known node with a recursive query, a primary-key
 * lookup per step, and never more steps than the page holds: a page costs the same 5,000 messages
 * back in a 10,000-message branch as it does at the leaf. A page's cursor is its oldest message: the
 * walk goes on from that message's parent, so the next page continues the same branch even if the
 * active branch has moved since.
 */

/**
 * A message's place among its versions (siblings with the same parent and role), oldest first, and the
 * versions either side of it (null at either end), which a client switches to with PUT …/active-branch.
 */
export type Version = { index: number; count: number; previousId: string | null; nextId: string | null };

/** A message with its place among its versions. */
export type BranchMessage = Message & { version: Version };

/** nextCursor values, and any message id: the messages before that message on its branch. */
export const CURSOR_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * SQL for a message's version, for a message aliased `m`, as four columns: `<prefix>version_index`,
 * `…_count`, `…_previous` and `…_next` (read back with versionOf). Each is a seek in messages_siblings_idx.
 */
export const versionColumns = (m = "m", prefix = "") => {
  const siblings = `FROM messages s WHERE s.chatroom_id = ${m}.chatroom_id AND s.parent_id IS ${m}.parent_id AND s.role = ${m}.role`;
  return `
  (SELECT count(*) ${siblings} AND s.id <= ${m}.id) AS ${prefix}version_index,
  (SELECT count(*) ${siblings}) AS ${prefix}version_count,
  (SELECT s.id ${siblings} AND s.id < ${m}.id ORDER BY s.id DESC LIMIT 1) AS ${prefix}version_previous,
  (SELECT s.id ${siblings} AND s.id > ${m}.id ORDER BY s.id LIMIT 1) AS ${prefix}version_next`;
};
export const VERSION_COLUMNS = versionColumns();

/** The version columns of a row (see versionColumns), under `prefix`. */
export type VersionColumns<P extends string = ""> = {
  [K in "version_index" | "version_count" | "version_previous" | "version_next" as `${P}${K}`]: K extends
    | "version_index"
    | "version_count"
    ? number
    : string | null;
};

export function versionOf(row: Record<string, unknown>, prefix = ""): Version {
  return {
    index: Number(row[`${prefix}version_index`] ?? 1),
    count: Number(row[`${prefix}version_count`] ?? 1),
    previousId: (row[`${prefix}version_previous`] as string | null | undefined) ?? null,
    nextId: (row[`${prefix}version_next`] as string | null | undefined) ?? null,
  };
}

/**
 * The branch up from a start node (at most `?3` + 1 path nodes) with the replies hung beside it, newest
 * first: `seq` orders them (a hung reply comes just before, that is after, its prompt). `?2` is the
 * chatroom; with `skipFirstHung` true the start node's own hung reply is left out (the page before ended with it).
 */
const branchSql = (start: string, skipFirstHung: string) => `
WITH RECURSIVE path(id, parent_id, role, status, next_role, n) AS (
  SELECT id, parent_id, role, status, NULL, 1 FROM messages WHERE id = ${start} AND chatroom_id = ?2
  UNION ALL
  SELECT m.id, m.parent_id, m.role, m.status, path.role, path.n + 1
    FROM messages m JOIN path ON m.id = path.parent_id
    WHERE path.n <= ?3
),
items(id, seq) AS (
  SELECT id, n * 2 FROM path
  UNION ALL
  SELECT (SELECT r.id FROM messages r JOIN messages p ON p.id = path.id
      WHERE r.chatroom_id = ?2 AND r.parent_id = path.id AND r.role = 'assistant' AND r.incarnation = p.incarnation
      ORDER BY r.id DESC LIMIT 1), n * 2 - 1
    FROM path
    WHERE path.role = 'user' AND path.status <> 'pending' AND (path.next_role IS NULL OR path.next_role = 'user')
      AND NOT (path.n = 1 AND ${skipFirstHung})
)
SELECT m.*, ${VERSION_COLUMNS}
FROM items JOIN messages m ON m.id = items.id
ORDER BY items.seq LIMIT ?3 + 1`;

const FROM_LEAF = branchSql("(SELECT active_leaf_id FROM chatrooms WHERE id = ?2)", "0");
// Before a reply comes its prompt itself (whose hung reply, if it has one, is that reply); before a
// prompt, the message it follows and that one's hung reply.
const FROM_CURSOR = branchSql(
  "(SELECT parent_id FROM messages WHERE id = ?1 AND chatroom_id = ?2)",
  "(SELECT role FROM messages WHERE id = ?1) = 'assistant'",
);

/**
 * The statement for one page of a chatroom's branch: from its active leaf, or before a cursor message.
 * It does not check who owns the chatroom: run it in a batch beside a check that does.
 */
export function branchPageStatement(
  db: Database,
  chatroomId: string,
  limit: number,
  before?: string,
): D1PreparedStatement {
  return db.$client.prepare(before === undefined ? FROM_LEAF : FROM_CURSOR).bind(before ?? null, chatroomId, limit);
}

const toMessage = rowMapper(messages);

type Row = Record<string, unknown>;

export const toBranchMessage = (row: Row): BranchMessage => ({ ...toMessage(row), version: versionOf(row) });

/**
 * A page from a branch statement's result: at most `limit` messages oldest first, and the cursor of the
 * page before them (null when these reach the first message).
 */
export function branchPage(result: D1Result, limit: number): { messages: BranchMessage[]; nextCursor: string | null } {
  const rows = result.results as Row[];
  const shown = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? ((shown.at(-1)?.id as string | undefined) ?? null) : null;
  return { messages: shown.reverse().map(toBranchMessage), nextCursor };
}

/** One page of the user's chatroom's active branch, and whether the chatroom is theirs: one round trip. */
export async function findBranchPage(db: Database, userId: string, chatroomId: string, limit: number, before?: string) {
  // The owner check carries the cursor check (only a page with a cursor asks it): two statements.
  const owner =
    before === undefined
      ? db.$client
          .prepare("SELECT 1 AS owned, 1 AS found FROM chatrooms WHERE id = ? AND user_id = ?")
          .bind(chatroomId, userId)
      : db.$client
          .prepare(
            "SELECT 1 AS owned, EXISTS (SELECT 1 FROM messages WHERE id = ? AND chatroom_id = chatrooms.id) AS found FROM chatrooms WHERE id = ? AND user_id = ?",
          )
          .bind(before, chatroomId, userId);
  const [owned, page] = await db.$client.batch([owner, branchPageStatement(db, chatroomId, limit, before)]);
  const room = owned?.results[0] as { found: number } | undefined;
  if (!room || !page) return undefined;
  // A cursor whose message is gone (a retry drops the failed run's note) or belongs elsewhere would read
  // as the start of the chatroom: the client is told to reload instead.
  if (room.found !== 1) return "stale-cursor" as const;
  return branchPage(page, limit);
}
