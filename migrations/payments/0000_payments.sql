CREATE TABLE `audit_events` (
	`seq` integer PRIMARY KEY NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL,
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
CREATE INDEX `audit_events_resource` ON `audit_events` (`resource_id`);--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`client_id` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`state` text NOT NULL,
	`response_status` integer,
	`response_body` text,
	`created_at` integer NOT NULL,
	`locked_until` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`client_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires` ON `idempotency_keys` (`expires_at`);--> statement-breakpoint
CREATE TABLE `ledger_lines` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`entry_id` text NOT NULL,
	`payment_id` text NOT NULL,
	`refund_id` text,
	`kind` text NOT NULL,
	`account` text NOT NULL,
	`currency` text NOT NULL,
	`amount` integer NOT NULL,
	`actor` text NOT NULL,
	`reason` text,
	`request_id` text NOT NULL,
	`trace_id` text,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `ledger_lines_payment` ON `ledger_lines` (`payment_id`);--> statement-breakpoint
CREATE INDEX `ledger_lines_created` ON `ledger_lines` (`created_at`);--> statement-breakpoint
CREATE TABLE `payment_methods` (
	`id` text PRIMARY KEY NOT NULL,
	`brand` text NOT NULL,
	`last4` text NOT NULL,
	`exp_month` integer NOT NULL,
	`exp_year` integer NOT NULL,
	`fingerprint` text NOT NULL,
	`number_enc` text NOT NULL,
	`holder_name_enc` text,
	`created_at` text NOT NULL,
	`created_by` text NOT NULL,
	`created_by_client` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `payment_methods_fingerprint` ON `payment_methods` (`fingerprint`);--> statement-breakpoint
CREATE TABLE `payment_transitions` (
	`payment_id` text NOT NULL,
	`version` integer NOT NULL,
	`from_status` text,
	`to_status` text NOT NULL,
	`event` text NOT NULL,
	`actor` text NOT NULL,
	`at` text NOT NULL,
	PRIMARY KEY(`payment_id`, `version`)
);
--> statement-breakpoint
CREATE TABLE `payments` (
	`id` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`amount` integer NOT NULL,
	`amount_captured` integer NOT NULL,
	`amount_refunded` integer NOT NULL,
	`amount_refund_pending` integer NOT NULL,
	`currency` text NOT NULL,
	`capture_method` text NOT NULL,
	`payment_method_id` text NOT NULL,
	`decline_code` text,
	`processor_ref` text,
	`description` text,
	`metadata` text NOT NULL,
	`version` integer NOT NULL,
	`created_at` text NOT NULL,
	`updated_at` text NOT NULL,
	`created_by` text NOT NULL,
	`created_by_client` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `payments_created` ON `payments` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `payments_status_created` ON `payments` (`status`,`created_at`);--> statement-breakpoint
CREATE TABLE `processor_operations` (
	`id` text PRIMARY KEY NOT NULL,
	`operation` text NOT NULL,
	`reference` text NOT NULL,
	`amount` integer NOT NULL,
	`currency` text NOT NULL,
	`outcome` text NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `refunds` (
	`id` text PRIMARY KEY NOT NULL,
	`payment_id` text NOT NULL,
	`amount` integer NOT NULL,
	`currency` text NOT NULL,
	`reason` text NOT NULL,
	`status` text NOT NULL,
	`requested_by` text NOT NULL,
	`requested_by_client` text NOT NULL,
	`approved_by` text,
	`created_at` text NOT NULL,
	`approved_at` text
);
--> statement-breakpoint
CREATE INDEX `refunds_payment` ON `refunds` (`payment_id`);