import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
// The internal workers run beside the gateway with their own databases: give them their tables.
for (const db of [env.PHI_DB, env.PHI_DB_1, env.PHI_DB_2, env.PHI_DB_3]) await applyD1Migrations(db, env.PHI_MIGRATIONS);
await applyD1Migrations(env.PAYMENTS_DB, env.PAYMENTS_MIGRATIONS);
await applyD1Migrations(env.DEVICES_DB, env.DEVICES_MIGRATIONS);
