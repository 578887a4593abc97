CREATE TABLE `shares` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`chatroom_id` text NOT NULL,
	`chatroom_name` text NOT NULL,
	`messages` text NOT NULL,
	`message_count` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`chatroom_id`) REFERENCES `chatrooms`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `shares_chatroom_created_idx` ON `shares` (`chatroom_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `shares_user_idx` ON `shares` (`user_id`);