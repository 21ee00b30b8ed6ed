-- Tenants (issue 18): every row carries tenant_id; the rows written before tenants move into the default
-- tenant through the column default. drizzle-kit wrote this file; edited by hand where marked.
DROP INDEX `resource_versions_version`;--> statement-breakpoint
DROP INDEX `resource_versions_patient`;--> statement-breakpoint
DROP INDEX `resource_versions_updated`;--> statement-breakpoint
ALTER TABLE `resource_versions` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `resource_versions_version` ON `resource_versions` (`tenant_id`,`resource_type`,`id`,`version_id`);--> statement-breakpoint
CREATE INDEX `resource_versions_patient` ON `resource_versions` (`tenant_id`,`patient_id`);--> statement-breakpoint
CREATE INDEX `resource_versions_updated` ON `resource_versions` (`tenant_id`,`resource_type`,`last_updated`,`id`);--> statement-breakpoint
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_search_index` (
	`tenant_id` text DEFAULT 'ten_default' NOT NULL,
	`resource_type` text NOT NULL,
	`resource_id` text NOT NULL,
	`param` text NOT NULL,
	`token` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `resource_type`, `param`, `token`, `resource_id`)
);
--> statement-breakpoint
-- Hand edit: the old table has no tenant_id to copy (drizzle-kit selected it from there): its rows are the default tenant's.
INSERT INTO `__new_search_index`("tenant_id", "resource_type", "resource_id", "param", "token") SELECT 'ten_default', "resource_type", "resource_id", "param", "token" FROM `search_index`;--> statement-breakpoint
DROP TABLE `search_index`;--> statement-breakpoint
ALTER TABLE `__new_search_index` RENAME TO `search_index`;--> statement-breakpoint
PRAGMA foreign_keys=ON;--> statement-breakpoint
CREATE INDEX `search_index_resource` ON `search_index` (`tenant_id`,`resource_type`,`resource_id`);--> statement-breakpoint
ALTER TABLE `phi_audit` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `phi_audit_tenant` ON `phi_audit` (`tenant_id`,`seq`);--> statement-breakpoint
-- Hand edit (drizzle-kit writes no triggers): the seal-once guard names every data column, so it is
-- recreated with tenant_id in the same migration; no moment exists in which a record's tenant could change.
DROP TRIGGER `phi_audit_seal_once`;--> statement-breakpoint
CREATE TRIGGER `phi_audit_seal_once` BEFORE UPDATE ON `phi_audit`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.at IS NOT OLD.at OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client IS NOT OLD.actor_client OR NEW.actor_roles IS NOT OLD.actor_roles OR NEW.token_id IS NOT OLD.token_id OR NEW.action IS NOT OLD.action OR NEW.resource_type IS NOT OLD.resource_type OR NEW.resource_id IS NOT OLD.resource_id OR NEW.patient_ids IS NOT OLD.patient_ids OR NEW.outcome IS NOT OLD.outcome OR NEW.reason IS NOT OLD.reason OR NEW.purpose_of_use IS NOT OLD.purpose_of_use OR NEW.client_ip IS NOT OLD.client_ip OR NEW.request_id IS NOT OLD.request_id OR NEW.trace_id IS NOT OLD.trace_id OR NEW.tenant_id IS NOT OLD.tenant_id
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;