CREATE TABLE `phi_audit_checkpoints` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`sealed_up_to` integer NOT NULL,
	`head_hash` text NOT NULL,
	`sealed_count` integer NOT NULL,
	`batch` integer NOT NULL,
	`at` text NOT NULL
);
--> statement-breakpoint
ALTER TABLE `phi_audit` ADD `sealed_at` text;--> statement-breakpoint
CREATE INDEX `phi_audit_pending` ON `phi_audit` (`seq`) WHERE hash IS NULL;