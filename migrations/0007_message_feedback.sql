ALTER TABLE `messages` ADD `feedback_rating` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `feedback_comment` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `feedback_at` integer;