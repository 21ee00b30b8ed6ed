PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_phi_audit` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`prev_hash` text,
	`hash` text,
	`sealed_at` text,
	`at` text NOT NULL,
	`actor_sub` text NOT NULL,
	`actor_client` text NOT NULL,
	`actor_roles` text NOT NULL,
	`token_id` text NOT NULL,
	`action` text NOT NULL,
	`resource_type` text NOT NULL,
	`resource_id` text NOT NULL,
	`patient_ids` text NOT NULL,
	`outcome` text NOT NULL,
	`reason` text NOT NULL,
	`purpose_of_use` text NOT NULL,
	`client_ip` text NOT NULL,
	`request_id` text NOT NULL,
	`trace_id` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_phi_audit`("seq", "prev_hash", "hash", "sealed_at", "at", "actor_sub", "actor_client", "actor_roles", "token_id", "action", "resource_type", "resource_id", "patient_ids", "outcome", "reason", "purpose_of_use", "client_ip", "request_id", "trace_id") SELECT "seq", "prev_hash", "hash", "sealed_at", "at", "actor_sub", "actor_client", "actor_roles", "token_id", "action", "resource_type", "resource_id", "patient_ids", "outcome", "reason", "purpose_of_use", "client_ip", "request_id", "trace_id" FROM `phi_audit`;--> statement-breakpoint
DROP TABLE `phi_audit`;--> statement-breakpoint
ALTER TABLE `__new_phi_audit` RENAME TO `phi_audit`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `phi_audit_at` ON `phi_audit` (`at`);--> statement-breakpoint
CREATE INDEX `phi_audit_actor` ON `phi_audit` (`actor_sub`);--> statement-breakpoint
CREATE INDEX `phi_audit_pending` ON `phi_audit` (`seq`) WHERE hash IS NULL;