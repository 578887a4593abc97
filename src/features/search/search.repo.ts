import type { Database } from "../../db/client";

/** Marks snippet() puts around each matched word; stored text never holds them (no control characters). */
export const MARK_START = "\u0001";
export const MARK_END = "\u0002";

export type SearchRow = {
  id: string;
  chatroom_id: string;
  chatroom_name: string;
  role: "user" | "assistant";
  created_at: number;
  snip: string;
  score: number;
};

/**
 * One page of the user's matching messages, best first (bm25 on the content; ties newest first), after
 * `after` (the last result of the page before). One statement: the scope tokens in the MATCH keep FTS5
 * to the user's own postings, and the join to messages checks ownership again.
 */
const SEARCH_SQL = (paged: boolean) => `
SELECT * FROM (
  SELECT m.id, m.chatroom_id, c.name AS chatroom_name, m.role, m.created_at,
    snippet(messages_fts, 0, char(1), char(2), '…', 32) AS snip,
    bm25(messages_fts, 1.0, 0.0) AS score
  FROM messages_fts f
  JOIN search_docs d ON d.rowid = f.rowid
  JOIN messages m ON m.id = d.message_id
  JOIN chatrooms c ON c.id = m.chatroom_id
  WHERE messages_fts MATCH ?1 AND m.user_id = ?2
)
${paged ? "WHERE score > ?4 OR (score = ?4 AND id < ?5)" : ""}
ORDER BY score, id DESC
LIMIT ?3`;

const FIRST_PAGE = SEARCH_SQL(false);
const NEXT_PAGE = SEARCH_SQL(true);

export async function searchMessages(
  db: Database,
  input: { match: string; userId: string; limit: number; after?: { score: number; id: string } },
): Promise<SearchRow[]> {
  const { match, userId, limit, after } = input;
  const statement = after
    ? db.$client.prepare(NEXT_PAGE).bind(match, userId, limit, after.score, after.id)
    : db.$client.prepare(FIRST_PAGE).bind(match, userId, limit);
  const [result] = await db.$client.batch([statement]);
  return (result?.results ?? []) as SearchRow[];
}
