CREATE TABLE `search_docs` (
	`rowid` integer PRIMARY KEY NOT NULL,
	`message_id` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `search_docs_message_id_unique` ON `search_docs` (`message_id`);--> statement-breakpoint
-- Full-text search over the user's messages: SQLite FTS5 in the same database, the same round trip and the
-- same transaction as the messages. Case and diacritics are folded (unicode61 remove_diacritics 2); the
-- scope column holds "u<user id>" and "c<chatroom id>" (hex, no dashes) so a search reads only the
-- caller's postings.
CREATE VIRTUAL TABLE `messages_fts` USING fts5(content, scope, tokenize = 'unicode61 remove_diacritics 2');
--> statement-breakpoint
CREATE TRIGGER `messages_search_insert` AFTER INSERT ON `messages`
WHEN NOT (NEW.`role` = 'assistant' AND NEW.`status` = 'failed') BEGIN
  INSERT INTO `search_docs` (`message_id`) VALUES (NEW.`id`);
  INSERT INTO `messages_fts` (rowid, content, scope) VALUES (
    (SELECT `rowid` FROM `search_docs` WHERE `message_id` = NEW.`id`), NEW.`content`,
    'u' || replace(NEW.`user_id`, '-', '') || ' c' || replace(NEW.`chatroom_id`, '-', ''));
END;
--> statement-breakpoint
CREATE TRIGGER `messages_search_delete` AFTER DELETE ON `messages` BEGIN
  DELETE FROM `messages_fts` WHERE rowid = (SELECT `rowid` FROM `search_docs` WHERE `message_id` = OLD.`id`);
  DELETE FROM `search_docs` WHERE `message_id` = OLD.`id`;
END;
--> statement-breakpoint
CREATE TRIGGER `messages_search_update` AFTER UPDATE OF `content` ON `messages` BEGIN
  UPDATE `messages_fts` SET content = NEW.`content`
  WHERE rowid = (SELECT `rowid` FROM `search_docs` WHERE `message_id` = NEW.`id`);
END;
--> statement-breakpoint
-- The messages stored before search existed.
INSERT INTO `search_docs` (`message_id`)
SELECT `id` FROM `messages` WHERE NOT (`role` = 'assistant' AND `status` = 'failed') ORDER BY `id`;
--> statement-breakpoint
INSERT INTO `messages_fts` (rowid, content, scope)
SELECT d.`rowid`, m.`content`, 'u' || replace(m.`user_id`, '-', '') || ' c' || replace(m.`chatroom_id`, '-', '')
FROM `search_docs` d JOIN `messages` m ON m.`id` = d.`message_id`;
