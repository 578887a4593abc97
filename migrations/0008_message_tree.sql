DROP INDEX `messages_reply_to_unique`;--> statement-breakpoint
ALTER TABLE `messages` ADD `parent_id` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `model` text;--> statement-breakpoint
CREATE UNIQUE INDEX `messages_reply_run_unique` ON `messages` (`reply_to`,`incarnation`);--> statement-breakpoint
CREATE INDEX `messages_siblings_idx` ON `messages` (`chatroom_id`,`parent_id`,`role`,`id`);--> statement-breakpoint
ALTER TABLE `chatrooms` ADD `active_leaf_id` text;--> statement-breakpoint
ALTER TABLE `chatrooms` ADD `system_instruction` text;--> statement-breakpoint
ALTER TABLE `chatrooms` ADD `model` text;--> statement-breakpoint
-- Every existing chatroom becomes a single-branch tree, as the live code would have built it: a reply's
-- parent is its prompt; a prompt's parent is the prompt before it, or that prompt's reply when the reply
-- already existed when this prompt was sent (ids are UUIDv7, so creation order). Walking the branch from
-- its leaf, with each prompt's reply beside it, gives back every message in the order it had.
UPDATE `messages` SET `parent_id` = `reply_to` WHERE `role` = 'assistant';
--> statement-breakpoint
UPDATE `messages` SET `parent_id` = (
  SELECT COALESCE(
    (SELECT `r`.`id` FROM `messages` `r` WHERE `r`.`reply_to` = `prev`.`id` AND `r`.`id` < `messages`.`id`),
    `prev`.`id`)
  FROM `messages` `prev`
  WHERE `prev`.`chatroom_id` = `messages`.`chatroom_id` AND `prev`.`role` = 'user' AND `prev`.`id` < `messages`.`id`
  ORDER BY `prev`.`id` DESC LIMIT 1
) WHERE `role` = 'user';
--> statement-breakpoint
-- A reply records the run of its prompt that wrote it (each prompt had at most one reply: its last run's).
UPDATE `messages` SET `incarnation` = (SELECT `p`.`incarnation` FROM `messages` `p` WHERE `p`.`id` = `messages`.`reply_to`)
WHERE `role` = 'assistant' AND `reply_to` IS NOT NULL;
--> statement-breakpoint
UPDATE `chatrooms` SET `active_leaf_id` = (
  SELECT COALESCE((SELECT `r`.`id` FROM `messages` `r` WHERE `r`.`reply_to` = `p`.`id`), `p`.`id`)
  FROM `messages` `p` WHERE `p`.`chatroom_id` = `chatrooms`.`id` AND `p`.`role` = 'user'
  ORDER BY `p`.`id` DESC LIMIT 1
);
--> statement-breakpoint
-- Moving the active branch changes nothing the chatroom list shows: only the columns it shows bump the
-- owner's list version now.
DROP TRIGGER `chatrooms_list_version_update`;
--> statement-breakpoint
CREATE TRIGGER `chatrooms_list_version_update` AFTER UPDATE OF `name`, `updated_at`, `last_message_at`, `created_at`, `user_id` ON `chatrooms` BEGIN
  UPDATE `users` SET `list_version` = `list_version` + 1 WHERE `id` = NEW.`user_id`;
END;
