PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_device_audit` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`prev_hash` text,
	`hash` text,
	`sealed_at` text,
	`device_id` text NOT NULL,
	`time` text NOT NULL,
	`action` text NOT NULL,
	`actor_sub` text NOT NULL,
	`actor_client_id` text NOT NULL,
	`old_value` text,
	`new_value` text,
	`reason` text NOT NULL,
	`request_id` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_device_audit`("seq", "prev_hash", "hash", "sealed_at", "device_id", "time", "action", "actor_sub", "actor_client_id", "old_value", "new_value", "reason", "request_id") SELECT "seq", "prev_hash", "hash", "sealed_at", "device_id", "time", "action", "actor_sub", "actor_client_id", "old_value", "new_value", "reason", "request_id" FROM `device_audit`;--> statement-breakpoint
DROP TABLE `device_audit`;--> statement-breakpoint
ALTER TABLE `__new_device_audit` RENAME TO `device_audit`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `device_audit_device` ON `device_audit` (`device_id`,`seq`);--> statement-breakpoint
CREATE INDEX `device_audit_pending` ON `device_audit` (`seq`) WHERE hash IS NULL;