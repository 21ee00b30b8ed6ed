CREATE TABLE `device_audit_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`sealed_up_to` integer NOT NULL,
	`head_hash` text NOT NULL,
	`sealed_count` integer NOT NULL,
	`batch` integer NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `device_audit` ADD `sealed_at` text;--> statement-breakpoint
CREATE INDEX `device_audit_pending` ON `device_audit` (`seq`) WHERE hash IS NULL;