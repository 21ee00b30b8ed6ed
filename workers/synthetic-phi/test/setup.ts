import { applyD1Migrations, env } from "cloudflare:test";

await applyD1Migrations(env.PHI_DB, env.PHI_MIGRATIONS);
