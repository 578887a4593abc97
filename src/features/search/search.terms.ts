import { type SQL, sql } from "drizzle-orm";
import { chatroomScope, wordsOfText } from "./search.query";

/**
 * The statement that adds a stored message's words to the search index, for the batch that stores it
 * (after the insert, whose trigger gave the message its search_docs row), as a list of one or none: each word after the user's
 * search key, in order, so phrases still match. Nothing when the message holds no word, or is not
 * indexed (a failure note has no search_docs row), or was not stored by this batch.
 */
export function indexMessage(message: { id: string; userId: string; chatroomId: string; content: string }): SQL[] {
  const words = wordsOfText(message.content);
  if (!words) return [];
  return [
    sql`INSERT INTO message_terms (rowid, terms, scope)
    SELECT d.rowid, u.search_key || replace(${words}, ' ', ' ' || u.search_key), ${chatroomScope(message.chatroomId)}
    FROM search_docs d CROSS JOIN users u
    WHERE d.message_id = ${message.id} AND u.id = ${message.userId} AND u.search_key IS NOT NULL`,
  ];
}
