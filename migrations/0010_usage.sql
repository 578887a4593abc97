ALTER TABLE `messages` ADD `thought_tokens` integer;--> statement-breakpoint
CREATE INDEX `messages_user_created_idx` ON `messages` (`user_id`,`created_at`);