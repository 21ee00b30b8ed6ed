CREATE TABLE `tenants` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`name_key` text NOT NULL,
	`shard` integer NOT NULL,
	`created_at` text NOT NULL,
	`created_by` text NOT NULL,
	`offboarded_at` text,
	`offboarded_by` text,
	`offboard_reason` text,
	`tokens_not_before` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tenants_name_key` ON `tenants` (`name_key`);--> statement-breakpoint
CREATE INDEX `tenants_shard` ON `tenants` (`shard`);--> statement-breakpoint
CREATE INDEX `tenants_tokens_not_before` ON `tenants` (`tokens_not_before`);--> statement-breakpoint
ALTER TABLE `clients` ADD `tenant_id` text;--> statement-breakpoint
CREATE INDEX `clients_tenant_id` ON `clients` (`tenant_id`,`id`);--> statement-breakpoint
-- Data (added by hand after drizzle-kit's output): the default tenant, on PHI shard 0, holds every
-- client that existed before tenants (device clients included). The bootstrap admin is not a row
-- (it comes from configuration) and stays a platform client; `ten_platform` is never stored.
INSERT INTO `tenants` (`id`, `name`, `name_key`, `shard`, `created_at`, `created_by`) VALUES ('ten_default', 'Default', 'default', 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'migration');--> statement-breakpoint
UPDATE `clients` SET `tenant_id` = 'ten_default' WHERE `tenant_id` IS NULL;
