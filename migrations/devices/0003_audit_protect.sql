-- Custom migration (drizzle-kit writes no triggers). Records written before sealing moved off the
-- request path were chained on append: they are sealed already (sealed_at = their own time), and the
-- first checkpoint covers them.
UPDATE `device_audit` SET sealed_at = time WHERE hash IS NOT NULL AND sealed_at IS NULL;
--> statement-breakpoint
INSERT INTO `device_audit_checkpoints` (sealed_up_to, head_hash, sealed_count, batch, at)
  SELECT seq, hash, (SELECT COUNT(*) FROM `device_audit`), 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM `device_audit` WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1;
--> statement-breakpoint
-- Append-only: no record is ever deleted.
CREATE TRIGGER `device_audit_no_delete` BEFORE DELETE ON `device_audit`
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
--> statement-breakpoint
-- A record is written pending: only the sealer links it.
CREATE TRIGGER `device_audit_insert_pending` BEFORE INSERT ON `device_audit`
WHEN NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL OR NEW.sealed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'audit records are inserted unsealed'); END;
--> statement-breakpoint
-- The only UPDATE allowed: the sealer sets all three seal columns, once (NULL -> value); no data column changes.
CREATE TRIGGER `device_audit_seal_once` BEFORE UPDATE ON `device_audit`
WHEN OLD.prev_hash IS NOT NULL OR OLD.hash IS NOT NULL OR OLD.sealed_at IS NOT NULL
  OR NEW.prev_hash IS NULL OR NEW.hash IS NULL OR NEW.sealed_at IS NULL OR NEW.seq IS NOT OLD.seq
  OR NEW.device_id IS NOT OLD.device_id OR NEW.time IS NOT OLD.time OR NEW.action IS NOT OLD.action OR NEW.actor_sub IS NOT OLD.actor_sub OR NEW.actor_client_id IS NOT OLD.actor_client_id OR NEW.old_value IS NOT OLD.old_value OR NEW.new_value IS NOT OLD.new_value OR NEW.reason IS NOT OLD.reason OR NEW.request_id IS NOT OLD.request_id
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; only the sealer sets the seal, once'); END;
--> statement-breakpoint
CREATE TRIGGER `device_audit_checkpoints_no_update` BEFORE UPDATE ON `device_audit_checkpoints`
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
--> statement-breakpoint
CREATE TRIGGER `device_audit_checkpoints_no_delete` BEFORE DELETE ON `device_audit_checkpoints`
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
