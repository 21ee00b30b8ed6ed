PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_audit_events` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`prev_hash` text,
	`hash` text,
	`sealed_at` text,
	`at` text NOT NULL,
	`actor_sub` text NOT NULL,
	`actor_client` text NOT NULL,
	`actor_roles` text NOT NULL,
	`action` text NOT NULL,
	`resource_type` text NOT NULL,
	`resource_id` text,
	`outcome` text NOT NULL,
	`code` text,
	`amount` integer,
	`currency` text,
	`request_id` text NOT NULL,
	`trace_id` text,
	`ip` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_audit_events`("seq", "prev_hash", "hash", "sealed_at", "at", "actor_sub", "actor_client", "actor_roles", "action", "resource_type", "resource_id", "outcome", "code", "amount", "currency", "request_id", "trace_id", "ip") SELECT "seq", "prev_hash", "hash", "sealed_at", "at", "actor_sub", "actor_client", "actor_roles", "action", "resource_type", "resource_id", "outcome", "code", "amount", "currency", "request_id", "trace_id", "ip" FROM `audit_events`;--> statement-breakpoint
DROP TABLE `audit_events`;--> statement-breakpoint
ALTER TABLE `__new_audit_events` RENAME TO `audit_events`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `audit_events_resource` ON `audit_events` (`resource_id`);--> statement-breakpoint
CREATE INDEX `audit_events_pending` ON `audit_events` (`seq`) WHERE hash IS NULL;