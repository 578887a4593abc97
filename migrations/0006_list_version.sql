ALTER TABLE `users` ADD `list_version` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Any change to a chatroom row (create, rename, a send or reply touching its times, delete) bumps its
-- owner's list version in the same transaction: the cached chatroom list can never be read as current
-- after a change, and no KV key has to be rewritten on every message.
CREATE TRIGGER `chatrooms_list_version_insert` AFTER INSERT ON `chatrooms` BEGIN
  UPDATE `users` SET `list_version` = `list_version` + 1 WHERE `id` = NEW.`user_id`;
END;
--> statement-breakpoint
CREATE TRIGGER `chatrooms_list_version_update` AFTER UPDATE ON `chatrooms` BEGIN
  UPDATE `users` SET `list_version` = `list_version` + 1 WHERE `id` = NEW.`user_id`;
END;
--> statement-breakpoint
CREATE TRIGGER `chatrooms_list_version_delete` AFTER DELETE ON `chatrooms` BEGIN
  UPDATE `users` SET `list_version` = `list_version` + 1 WHERE `id` = OLD.`user_id`;
END;
