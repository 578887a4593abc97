ALTER TABLE `users` ADD `search_key` text;--> statement-breakpoint
-- Search reads only the searching user's postings: every word in the index is the user's search key
-- followed by the word ("3fa9c01b22e7lisbon"), so a word's postings, a prefix's terms and bm25's counts
-- are the user's own, however many other users there are. The Worker splits a message into words (SQLite
-- cannot split by Unicode category) and the statement that stores the message puts the key in front of
-- each; unicode61 then folds case and diacritics as before. The index keeps no text (content=''), and a
-- deleted message's postings go at once (contentless_delete); snippets come from messages.content.
UPDATE `users` SET `search_key` = lower(hex(randomblob(6)));
--> statement-breakpoint
CREATE TRIGGER `users_search_key` AFTER INSERT ON `users` WHEN NEW.`search_key` IS NULL BEGIN
  UPDATE `users` SET `search_key` = lower(hex(randomblob(6))) WHERE `id` = NEW.`id`;
END;
--> statement-breakpoint
CREATE VIRTUAL TABLE `message_terms` USING fts5(terms, scope, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
--> statement-breakpoint
-- The messages indexed so far, from the words the old index already split and folded, in order.
CREATE VIRTUAL TABLE `messages_fts_words` USING fts5vocab(`messages_fts`, 'instance');
--> statement-breakpoint
INSERT INTO `message_terms` (rowid, terms, scope)
SELECT w.`doc`, u.`search_key` || group_concat(w.`term`, ' ' || u.`search_key` ORDER BY w.`offset`),
  'c' || replace(m.`chatroom_id`, '-', '')
FROM `messages_fts_words` w
JOIN `search_docs` d ON d.`rowid` = w.`doc`
JOIN `messages` m ON m.`id` = d.`message_id`
JOIN `users` u ON u.`id` = m.`user_id`
WHERE w.`col` = 'content'
GROUP BY w.`doc`;
--> statement-breakpoint
DROP TABLE `messages_fts_words`;
--> statement-breakpoint
DROP TRIGGER `messages_search_insert`;
--> statement-breakpoint
DROP TRIGGER `messages_search_update`;
--> statement-breakpoint
DROP TRIGGER `messages_search_delete`;
--> statement-breakpoint
DROP TABLE `messages_fts`;
--> statement-breakpoint
-- A message gets its search_docs row (its rowid in the index) here; its words are added by the statement
-- after the insert, in the same batch (src/features/search/search.terms.ts).
CREATE TRIGGER `messages_search_insert` AFTER INSERT ON `messages`
WHEN NOT (NEW.`role` = 'assistant' AND NEW.`status` = 'failed') BEGIN
  INSERT INTO `search_docs` (`message_id`) VALUES (NEW.`id`);
END;
--> statement-breakpoint
CREATE TRIGGER `messages_search_delete` AFTER DELETE ON `messages` BEGIN
  DELETE FROM `message_terms` WHERE rowid = (SELECT `rowid` FROM `search_docs` WHERE `message_id` = OLD.`id`);
  DELETE FROM `search_docs` WHERE `message_id` = OLD.`id`;
END;
--> statement-breakpoint
-- Stored text never changes today; if it ever does, its old words must not be found (the new ones are
-- the writer's to add, as on insert).
CREATE TRIGGER `messages_search_update` AFTER UPDATE OF `content` ON `messages` BEGIN
  DELETE FROM `message_terms` WHERE rowid = (SELECT `rowid` FROM `search_docs` WHERE `message_id` = NEW.`id`);
END;
