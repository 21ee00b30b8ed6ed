// The five workers, in deploy order (internal first, the gateway last).
// Used by the dev, build, types and deploy scripts and by the test setup.
import { fileURLToPath } from "node:url";
import path from "node:path";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export const WORKERS = [
  // phi's PHI shards besides shard 0 (DB): their bindings and local database names (workers/phi/wrangler.toml).
  { name: "phi", config: "workers/phi/wrangler.toml", db: "phi", shards: [["DB_1", "phi-shard-1"], ["DB_2", "phi-shard-2"], ["DB_3", "phi-shard-3"]], budgetKiB: 512 },
  { name: "payments", config: "workers/payments/wrangler.toml", db: "payments", budgetKiB: 512 },
  { name: "synthetic-phi", config: "workers/synthetic-phi/wrangler.toml", db: null, budgetKiB: 1024 },
  { name: "devices", config: "workers/devices/wrangler.toml", db: "devices", budgetKiB: 512 },
  { name: "auth", config: "wrangler.toml", db: "auth", budgetKiB: 512 },
];

/** Keeps wrangler offline and quiet (STACK.md, "Keep wrangler quiet and offline"). */
export const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

/** Every D1 database of a worker with migrations: [binding, database name, migrations folder]. */
export function databasesOf(w) {
  if (!w.db) return [];
  return [["DB", w.db], ...(w.shards ?? [])].map(([binding, name]) => [binding, name, path.join(ROOT, "migrations", w.db)]);
}

export const WRANGLER_BIN = path.join(ROOT, "node_modules", ".bin", "wrangler");
