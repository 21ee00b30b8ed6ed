-- Which data services confirmed a tenant's erasure (offboarding). drizzle-kit wrote the column; the backfill is a
-- hand edit: every tenant erased before it was erased by phi and payments, since devices joined offboarding later,
-- so a further DELETE of such a tenant erases its device sessions too instead of answering 409.
ALTER TABLE `tenants` ADD `data_erased_services` text;--> statement-breakpoint
UPDATE `tenants` SET `data_erased_services` = 'phi,payments' WHERE `data_keys_destroyed_at` IS NOT NULL;
