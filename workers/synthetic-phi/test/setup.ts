import { applyD1Migrations, env } from "cloudflare:test";

for (const db of [env.PHI_DB, env.PHI_DB_1, env.PHI_DB_2, env.PHI_DB_3]) await applyD1Migrations(db, env.PHI_MIGRATIONS);
