import { applyD1Migrations, env } from "cloudflare:test";
import { beforeEach } from "vitest";
import { resetSecurityEventWindowsForTests } from "../src/security-events";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The internal workers run beside the gateway with their own databases: give them their tables.
for (const db of [env.PHI_DB, env.PHI_DB_1, env.PHI_DB_2, env.PHI_DB_3]) await applyD1Migrations(db, env.PHI_MIGRATIONS);
await applyD1Migrations(env.PAYMENTS_DB, env.PAYMENTS_MIGRATIONS);
await applyD1Migrations(env.DEVICES_DB, env.DEVICES_MIGRATIONS);

// The rows stored per security event type are bounded per isolate and window (src/security-events.ts), and
// a file's tests share the isolate: each test starts with fresh windows, so the rows it reads are its own.
beforeEach(() => resetSecurityEventWindowsForTests());
