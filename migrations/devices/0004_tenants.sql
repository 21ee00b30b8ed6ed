-- Tenants (issue 18): every row carries tenant_id; the rows written before tenants move into the default
-- tenant through the column default. drizzle-kit wrote this file; the trigger at the end is a hand edit.
DROP INDEX `device_audit_device`;--> statement-breakpoint
ALTER TABLE `device_audit` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `device_audit_device` ON `device_audit` (`tenant_id`,`device_id`,`seq`);--> statement-breakpoint
DROP INDEX `devices_udi`;--> statement-breakpoint
DROP INDEX `devices_serial`;--> statement-breakpoint
DROP INDEX `devices_status`;--> statement-breakpoint
ALTER TABLE `devices` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
CREATE INDEX `devices_tenant` ON `devices` (`tenant_id`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `devices_udi` ON `devices` (`tenant_id`,`udi`);--> statement-breakpoint
CREATE UNIQUE INDEX `devices_serial` ON `devices` (`tenant_id`,`manufacturer`,`serial`);--> statement-breakpoint
CREATE INDEX `devices_status` ON `devices` (`tenant_id`,`status`,`id`);--> statement-breakpoint
ALTER TABLE `thresholds` ADD `tenant_id` text DEFAULT 'ten_default' NOT NULL;--> statement-breakpoint
-- Hand edit (drizzle-kit writes no triggers): the seal-once guard names every data column, so it is
-- recreated with tenant_id in the same migration; no moment exists in which a record's tenant could change.
DROP TRIGGER `device_audit_seal_once`;--> statement-breakpoint
CREATE TRIGGER `device_audit_seal_once` BEFORE UPDATE ON `device_audit`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.device_id IS NOT OLD.device_id OR NEW.time IS NOT OLD.time OR NEW.action IS NOT OLD.action OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client_id IS NOT OLD.actor_client_id OR NEW.old_value IS NOT OLD.old_value OR NEW.new_value IS NOT OLD.new_value OR NEW.reason IS NOT OLD.reason OR NEW.request_id IS NOT OLD.request_id OR NEW.tenant_id IS NOT OLD.tenant_id
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;
