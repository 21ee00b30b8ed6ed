-- Custom migration (drizzle-kit writes no triggers). Records written before sealing moved off the
-- request path were chained on append: they are sealed already (sealed_at = their own time), and the
-- first checkpoint covers them.
UPDATE `phi_audit` SET sealed_at = at WHERE hash IS NOT NULL AND sealed_at IS NULL;
--> statement-breakpoint
INSERT INTO `phi_audit_checkpoints` (sealed_up_to, head_hash, sealed_count, batch, at)
  SELECT seq, hash, (SELECT COUNT(*) FROM `phi_audit`), 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM `phi_audit` WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1;
--> statement-breakpoint
-- Append-only: no record is ever deleted.
CREATE TRIGGER `phi_audit_no_delete` BEFORE DELETE ON `phi_audit`
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
--> statement-breakpoint
-- A record is written pending: only the sealer links it.
CREATE TRIGGER `phi_audit_insert_pending` BEFORE INSERT ON `phi_audit`
WHEN NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL OR NEW.sealed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'audit records are inserted unsealed'); END;
--> statement-breakpoint
-- The only UPDATE allowed: the sealer sets all three seal columns, once (NULL -> value); no data column changes.
CREATE TRIGGER `phi_audit_seal_once` BEFORE UPDATE ON `phi_audit`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.at IS NOT OLD.at OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client IS NOT OLD.actor_client OR NEW.actor_roles IS NOT OLD.actor_roles OR NEW.token_id IS NOT OLD.token_id OR NEW.action IS NOT OLD.action OR NEW.resource_type IS NOT OLD.resource_type OR NEW.resource_id IS NOT OLD.resource_id OR NEW.patient_ids IS NOT OLD.patient_ids OR NEW.outcome IS NOT OLD.outcome OR NEW.reason IS NOT OLD.reason OR NEW.purpose_of_use IS NOT OLD.purpose_of_use OR NEW.client_ip IS NOT OLD.client_ip OR NEW.request_id IS NOT OLD.request_id OR NEW.trace_id IS NOT OLD.trace_id
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;
--> statement-breakpoint
CREATE TRIGGER `phi_audit_checkpoints_no_update` BEFORE UPDATE ON `phi_audit_checkpoints`
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `phi_audit_checkpoints_no_delete` BEFORE DELETE ON `phi_audit_checkpoints`
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
