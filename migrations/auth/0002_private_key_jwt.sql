CREATE TABLE `used_assertions` (
	`client_id` text NOT NULL,
	`jti` text NOT NULL,
	`expires_at` integer NOT NULL,
	PRIMARY KEY(`client_id`, `jti`)
);
--> statement-breakpoint
CREATE INDEX `used_assertions_expires_at` ON `used_assertions` (`expires_at`);--> statement-breakpoint
ALTER TABLE `clients` ADD `token_endpoint_auth_method` text DEFAULT 'client_secret_basic' NOT NULL;--> statement-breakpoint
ALTER TABLE `clients` ADD `jwks` text;