import { applyD1Migrations, env } from "cloudflare:test";

// Every PHI shard (DB is shard 0) gets the same migrations.
for (const db of [env.DB, env.DB_1, env.DB_2, env.DB_3]) await applyD1Migrations(db, env.TEST_MIGRATIONS);
await applyD1Migrations(env.AUTH_DB, env.TEST_AUTH_MIGRATIONS);
