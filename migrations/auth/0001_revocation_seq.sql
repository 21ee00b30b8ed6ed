-- revoked_tokens gains `seq`, the order D1 assigns (AUTOINCREMENT never reuses a value), so gateway
-- isolates refresh their revocation view incrementally. Rebuilt by hand from drizzle-kit's output: the
-- copy takes no `seq` from the old table (it had none) and needs no foreign_keys pragma (no foreign keys).
CREATE TABLE `__new_revoked_tokens` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`jti` text NOT NULL,
	`client_id` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked_at` text NOT NULL,
	`revoked_by` text NOT NULL
);
--> statement-breakpoint
INSERT INTO `__new_revoked_tokens`("jti", "client_id", "expires_at", "revoked_at", "revoked_by") SELECT "jti", "client_id", "expires_at", "revoked_at", "revoked_by" FROM `revoked_tokens` ORDER BY "revoked_at";--> statement-breakpoint
DROP TABLE `revoked_tokens`;--> statement-breakpoint
ALTER TABLE `__new_revoked_tokens` RENAME TO `revoked_tokens`;--> statement-breakpoint
CREATE UNIQUE INDEX `revoked_tokens_jti` ON `revoked_tokens` (`jti`);--> statement-breakpoint
CREATE INDEX `revoked_tokens_expires_at` ON `revoked_tokens` (`expires_at`);--> statement-breakpoint
CREATE INDEX `clients_disabled_at` ON `clients` (`disabled_at`);
