CREATE TABLE `tenant_keys` (
	`tenant_id` text PRIMARY KEY NOT NULL,
	`kid` text NOT NULL,
	`wrapped` text,
	`created_at` text NOT NULL,
	`destroyed_at` text,
	`destroyed_by` text,
	`destroyed_reason` text
);
--> statement-breakpoint
-- A destroyed key stays destroyed (crypto-shredding is final): its tombstone is never given key material again, nor deleted.
CREATE TRIGGER `tenant_keys_destroyed_final` BEFORE UPDATE ON `tenant_keys`
WHEN OLD.destroyed_at IS NOT NULL AND (NEW.wrapped IS NOT NULL OR NEW.destroyed_at IS NULL OR NEW.kid IS NOT OLD.kid)
BEGIN SELECT RAISE(ABORT, 'a destroyed tenant key stays destroyed'); END;
--> statement-breakpoint
CREATE TRIGGER `tenant_keys_tombstone_kept` BEFORE DELETE ON `tenant_keys`
WHEN OLD.destroyed_at IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'a destroyed tenant key stays destroyed'); END;
