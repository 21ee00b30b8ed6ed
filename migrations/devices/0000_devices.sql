CREATE TABLE `device_audit` (
	`seq` integer PRIMARY KEY NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
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
CREATE INDEX `device_audit_device` ON `device_audit` (`device_id`,`seq`);--> statement-breakpoint
CREATE TABLE `devices` (
	`id` text PRIMARY KEY NOT NULL,
	`udi` text NOT NULL,
	`model` text NOT NULL,
	`manufacturer` text NOT NULL,
	`serial` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`client_id` text NOT NULL,
	`created_at` text NOT NULL,
	`created_by` text NOT NULL,
	`decommissioned_at` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `devices_udi` ON `devices` (`udi`);--> statement-breakpoint
CREATE UNIQUE INDEX `devices_serial` ON `devices` (`manufacturer`,`serial`);--> statement-breakpoint
CREATE INDEX `devices_status` ON `devices` (`status`,`id`);--> statement-breakpoint
CREATE TABLE `thresholds` (
	`device_id` text NOT NULL,
	`version` integer NOT NULL,
	`limits` text NOT NULL,
	`set_at` text NOT NULL,
	`set_by` text NOT NULL,
	`reason` text NOT NULL,
	PRIMARY KEY(`device_id`, `version`)
);
