CREATE TABLE `auth_failures` (
	`key` text PRIMARY KEY NOT NULL,
	`window_start` integer NOT NULL,
	`failures` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `clients` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`secret_hash` text NOT NULL,
	`roles` text NOT NULL,
	`scopes` text NOT NULL,
	`device_id` text,
	`disabled` integer DEFAULT false NOT NULL,
	`created_at` text NOT NULL,
	`created_by` text NOT NULL,
	`disabled_at` text
);
--> statement-breakpoint
CREATE INDEX `clients_device_id` ON `clients` (`device_id`);--> statement-breakpoint
CREATE TABLE `revoked_tokens` (
	`jti` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked_at` text NOT NULL,
	`revoked_by` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `revoked_tokens_expires_at` ON `revoked_tokens` (`expires_at`);--> statement-breakpoint
CREATE TABLE `security_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`time` text NOT NULL,
	`event_type` text NOT NULL,
	`severity` text NOT NULL,
	`client_id` text,
	`ip` text,
	`request_id` text,
	`route` text,
	`reason` text
);
--> statement-breakpoint
CREATE INDEX `security_events_time` ON `security_events` (`time`);--> statement-breakpoint
CREATE INDEX `security_events_type` ON `security_events` (`event_type`,`time`);