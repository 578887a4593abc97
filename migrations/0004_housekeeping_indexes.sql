CREATE INDEX `idempotency_keys_created_idx` ON `idempotency_keys` (`created_at`);--> statement-breakpoint
CREATE INDEX `messages_pending_idx` ON `messages` (`updated_at`) WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX `otps_created_idx` ON `otps` (`created_at`);--> statement-breakpoint
CREATE INDEX `prompt_usage_day_idx` ON `prompt_usage` (`day`);--> statement-breakpoint
CREATE INDEX `stripe_events_processed_idx` ON `stripe_events` (`processed_at`);