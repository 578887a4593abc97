import { type SQL, sql } from "drizzle-orm";
import { type Database, toStatement } from "../../db/client";
import { chatroomScope, wordsOfText } from "./search.query";

type IndexedMessage = { id: string; userId: string; chatroomId: string; content: string };

/**
 * The statement that adds a stored message's words to the search index, for the batch that stores it
 * (after the insert, whose trigger gave the message its search_docs row), as a list of one or none: each
 * word after the user's search key, in order, so phrases still match. Nothing when the message holds no
 * word, or is not indexed (a failure note has no search_docs row), or was not stored by this batch.
 * `ifMissing` adds nothing to a message whose words are already there (the backfill below; a message
 * stored by the Worker always has them).
 */
export function indexMessage(message: IndexedMessage, { ifMissing = false } = {}): SQL[] {
  const words = wordsOfText(message.content);
  if (!words) return [];
  return [
    sql`INSERT INTO message_terms (rowid, terms, scope)
    SELECT d.rowid, u.search_key || replace(${words}, ' ', ' ' || u.search_key), ${chatroomScope(message.chatroomId)}
    FROM search_docs d CROSS JOIN users u
    WHERE d.message_id = ${message.id} AND u.id = ${message.userId} AND u.search_key IS NOT NULL${
      ifMissing ? sql` AND NOT EXISTS (SELECT 1 FROM message_terms_docsize s WHERE s.id = d.rowid)` : sql``
    }`,
  ];
}

/** The newest indexed messages the backfill looks at, each run. */
export const BACKFILL_LOOKBACK = 5_000;

/**
 * Adds the words of any of the newest `lookBack` messages that have none in the index: what the code
 * before the per-user index stored between migration 0014 and its own replacement (README, Deploy).
 * A message without a single word is looked at again each run and adds nothing. Returns how many
 * messages with words it found missing from the index (two runs at once may both find one; its words
 * go in once).
 */
export async function indexMissingWords(db: Database, lookBack = BACKFILL_LOOKBACK): Promise<number> {
  const { results } = await db.$client
    .prepare(
      `SELECT m.id, m.user_id, m.chatroom_id, m.content
       FROM (SELECT rowid, message_id FROM search_docs ORDER BY rowid DESC LIMIT ?1) d
       CROSS JOIN messages m ON m.id = d.message_id
       WHERE NOT EXISTS (SELECT 1 FROM message_terms_docsize s WHERE s.id = d.rowid)`,
    )
    .bind(lookBack)
    .all<{ id: string; user_id: string; chatroom_id: string; content: string }>();
  const statements = results.flatMap((row) =>
    indexMessage(
      { id: row.id, userId: row.user_id, chatroomId: row.chatroom_id, content: row.content },
      { ifMissing: true },
    ),
  );
  for (let i = 0; i < statements.length; i += 50) {
    await db.$client.batch(statements.slice(i, i + 50).map((statement) => toStatement(db, statement)));
  }
  return statements.length;
}
