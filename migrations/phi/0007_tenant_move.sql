-- Tenant moves (issue 18, workers/phi/README.md "Moving a tenant"): a copied audit record keeps its first home.
ALTER TABLE `phi_audit` ADD `origin` text;--> statement-breakpoint
CREATE INDEX `phi_audit_origin` ON `phi_audit` (`tenant_id`,`origin`) WHERE origin IS NOT NULL;
--> statement-breakpoint
-- Hand edit (drizzle-kit writes no triggers): the seal-once guard names every data column, so it is
-- recreated with `origin` in the same migration; a copied record's first home can never change.
DROP TRIGGER `phi_audit_seal_once`;--> statement-breakpoint
CREATE TRIGGER `phi_audit_seal_once` BEFORE UPDATE ON `phi_audit`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.at IS NOT OLD.at OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client IS NOT OLD.actor_client OR NEW.actor_roles IS NOT OLD.actor_roles OR NEW.token_id IS NOT OLD.token_id OR NEW.action IS NOT OLD.action OR NEW.resource_type IS NOT OLD.resource_type OR NEW.resource_id IS NOT OLD.resource_id OR NEW.patient_ids IS NOT OLD.patient_ids OR NEW.outcome IS NOT OLD.outcome OR NEW.reason IS NOT OLD.reason OR NEW.purpose_of_use IS NOT OLD.purpose_of_use OR NEW.client_ip IS NOT OLD.client_ip OR NEW.request_id IS NOT OLD.request_id OR NEW.trace_id IS NOT OLD.trace_id OR NEW.tenant_id IS NOT OLD.tenant_id OR NEW.origin IS NOT OLD.origin
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;
