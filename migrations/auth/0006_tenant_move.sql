ALTER TABLE `tenants` ADD `moving_to` integer;--> statement-breakpoint
ALTER TABLE `tenants` ADD `moving_since` text;