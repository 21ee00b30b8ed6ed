CREATE TABLE `phi_audit` (
	`seq` integer PRIMARY KEY NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
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
CREATE INDEX `phi_audit_at` ON `phi_audit` (`at`);--> statement-breakpoint
CREATE INDEX `phi_audit_actor` ON `phi_audit` (`actor_sub`);--> statement-breakpoint
CREATE TABLE `resource_versions` (
	`resource_type` text NOT NULL,
	`id` text NOT NULL,
	`version_id` integer NOT NULL,
	`last_updated` text NOT NULL,
	`deleted` integer NOT NULL,
	`sealed` text,
	`patient_id` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `resource_versions_version` ON `resource_versions` (`resource_type`,`id`,`version_id`);--> statement-breakpoint
CREATE INDEX `resource_versions_patient` ON `resource_versions` (`patient_id`);--> statement-breakpoint
CREATE TABLE `search_index` (
	`resource_type` text NOT NULL,
	`resource_id` text NOT NULL,
	`param` text NOT NULL,
	`token` text NOT NULL,
	PRIMARY KEY(`resource_type`, `param`, `token`, `resource_id`)
);
--> statement-breakpoint
CREATE INDEX `search_index_resource` ON `search_index` (`resource_type`,`resource_id`);