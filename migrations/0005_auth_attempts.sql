CREATE TABLE `auth_attempts` (
	`id` text PRIMARY KEY NOT NULL,
	`subject` text NOT NULL,
	`ip` text,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `auth_attempts_subject_at_idx` ON `auth_attempts` (`subject`,`at`);--> statement-breakpoint
CREATE INDEX `auth_attempts_ip_at_idx` ON `auth_attempts` (`ip`,`at`);--> statement-breakpoint
CREATE INDEX `auth_attempts_at_idx` ON `auth_attempts` (`at`);