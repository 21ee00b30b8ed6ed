-- Offboarding erases a tenant's device session data (readings, alarms, presence in each device's Durable Object);
-- erased_at records when, and lets an interrupted erasure resume where it stopped. drizzle-kit wrote this file.
ALTER TABLE `devices` ADD `erased_at` text;