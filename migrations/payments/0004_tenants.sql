-- Tenants (issue 18): every row carries tenant_id; the rows written before tenants move into the default
-- tenant through the column default. drizzle-kit wrote this file; edited by hand where marked.
DROP INDEX `audit_events_resource`;--> statement-breakpoint
ALTER TABLE `audit_events` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `audit_events_tenant` ON `audit_events` (`tenant_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_events_resource` ON `audit_events` (`tenant_id`,`resource_id`,`seq`);--> statement-breakpoint
DROP INDEX `ledger_lines_payment`;--> statement-breakpoint
DROP INDEX `ledger_lines_created`;--> statement-breakpoint
ALTER TABLE `ledger_lines` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `ledger_lines_account` ON `ledger_lines` (`tenant_id`,`currency`,`account`);--> statement-breakpoint
CREATE INDEX `ledger_lines_payment` ON `ledger_lines` (`tenant_id`,`payment_id`);--> statement-breakpoint
CREATE INDEX `ledger_lines_created` ON `ledger_lines` (`tenant_id`,`created_at`);--> statement-breakpoint
DROP INDEX `payment_methods_fingerprint`;--> statement-breakpoint
ALTER TABLE `payment_methods` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `payment_methods_fingerprint` ON `payment_methods` (`tenant_id`,`fingerprint`);--> statement-breakpoint
DROP INDEX `payments_created`;--> statement-breakpoint
DROP INDEX `payments_status_created`;--> statement-breakpoint
ALTER TABLE `payments` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `payments_created` ON `payments` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `payments_status_created` ON `payments` (`tenant_id`,`status`,`created_at`);--> statement-breakpoint
DROP INDEX `refunds_payment`;--> statement-breakpoint
ALTER TABLE `refunds` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `refunds_payment` ON `refunds` (`tenant_id`,`payment_id`);--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_idempotency_keys` (
	`tenant_id` text DEFAULT 'ten_default' NOT NULL,
	`client_id` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`state` text NOT NULL,
	`response_status` integer,
	`response_body` text,
	`created_at` integer NOT NULL,
	`locked_until` integer NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`tenant_id`, `client_id`, `key`)
);
--> statement-breakpoint
-- Hand edit: the old table has no tenant_id to copy (drizzle-kit selected it from there): its keys go to the default tenant.
INSERT INTO `__new_idempotency_keys`("tenant_id", "client_id", "key", "request_hash", "state", "response_status", "response_body", "created_at", "locked_until", "expires_at") SELECT 'ten_default', "client_id", "key", "request_hash", "state", "response_status", "response_body", "created_at", "locked_until", "expires_at" FROM `idempotency_keys`;--> statement-breakpoint
DROP TABLE `idempotency_keys`;--> statement-breakpoint
ALTER TABLE `__new_idempotency_keys` RENAME TO `idempotency_keys`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `idempotency_keys_expires` ON `idempotency_keys` (`expires_at`);--> statement-breakpoint
ALTER TABLE `payment_transitions` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
ALTER TABLE `processor_operations` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
-- Hand edit (drizzle-kit writes no triggers): the seal-once guard names every data column, so it is
-- recreated with tenant_id in the same migration; no moment exists in which a record's tenant could change.
DROP TRIGGER `audit_events_seal_once`;--> statement-breakpoint
CREATE TRIGGER `audit_events_seal_once` BEFORE UPDATE ON `audit_events`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.at IS NOT OLD.at OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client IS NOT OLD.actor_client OR NEW.actor_roles IS NOT OLD.actor_roles OR NEW.action IS NOT OLD.action OR NEW.resource_type IS NOT OLD.resource_type OR NEW.resource_id IS NOT OLD.resource_id OR NEW.outcome IS NOT OLD.outcome OR NEW.code IS NOT OLD.code OR NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency OR NEW.request_id IS NOT OLD.request_id OR NEW.trace_id IS NOT OLD.trace_id OR NEW.ip IS NOT OLD.ip OR NEW.tenant_id IS NOT OLD.tenant_id
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;
