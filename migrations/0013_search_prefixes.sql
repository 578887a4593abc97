-- Prefix indexes for 2- and 3-character prefixes: a search word is a prefix query, and without them each
-- one merged every term of the index that starts with it. The table is rebuilt from search_docs (the
-- triggers on messages name it, and work on the new one).
DROP TABLE `messages_fts`;
--> statement-breakpoint
CREATE VIRTUAL TABLE `messages_fts` USING fts5(content, scope, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
--> statement-breakpoint
INSERT INTO `messages_fts` (rowid, content, scope)
SELECT d.`rowid`, m.`content`, 'u' || replace(m.`user_id`, '-', '') || ' c' || replace(m.`chatroom_id`, '-', '')
FROM `search_docs` d JOIN `messages` m ON m.`id` = d.`message_id`;
