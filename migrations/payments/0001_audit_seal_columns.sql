CREATE TABLE `audit_events_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`sealed_up_to` integer NOT NULL,
	`head_hash` text NOT NULL,
	`sealed_count` integer NOT NULL,
	`batch` integer NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `audit_events` ADD `sealed_at` text;--> statement-breakpoint
CREATE INDEX `audit_events_pending` ON `audit_events` (`seq`) WHERE hash IS NULL;