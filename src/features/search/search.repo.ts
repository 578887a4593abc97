import type { Database } from "../../db/client";

export type SearchRow = {
  id: string;
  chatroom_id: string;
  chatroom_name: string;
  role: "user" | "assistant";
  created_at: number;
  content: string;
  score: number;
};

/**
 * One page of the user's matching messages, best first (bm25 on the words; ties newest first), after the
 * `offset` results of the pages before. One statement. The MATCH expression names the user's key as
 * char(1), replaced here by the key from the users row (a user without one, deleted while asking, by a key
 * no user has, never by NULL, which FTS5 refuses), so every term read is the user's own: the cost of
 * a search follows the user's messages, not everyone's. The join to messages checks ownership again.
 * CROSS JOIN fixes the order (FTS5 first, then each match's rows by key): newer SQLite versions than
 * workerd's otherwise start from the user's messages and run the whole match once per message.
 */
export const SEARCH_SQL = `
SELECT m.id, m.chatroom_id, c.name AS chatroom_name, m.role, m.created_at, m.content,
  bm25(message_terms, 1.0, 0.0) AS score
FROM message_terms f
CROSS JOIN search_docs d ON d.rowid = f.rowid
CROSS JOIN messages m ON m.id = d.message_id
CROSS JOIN chatrooms c ON c.id = m.chatroom_id
WHERE message_terms MATCH coalesce(
    (SELECT replace(?1, char(1), search_key) FROM users WHERE id = ?2),
    replace(?1, char(1), 'nokeynokeyno')
  ) AND m.user_id = ?2
ORDER BY score, m.id DESC
LIMIT ?3 OFFSET ?4`;

export async function searchMessages(
  db: Database,
  input: { match: string; userId: string; limit: number; offset: number },
): Promise<SearchRow[]> {
  const { match, userId, limit, offset } = input;
  const statement = db.$client.prepare(SEARCH_SQL).bind(match, userId, limit, offset);
  const [result] = await db.$client.batch([statement]);
  return (result?.results ?? []) as SearchRow[];
}
