import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      PHI_DB: D1Database;
      PHI_DB_1: D1Database;
      PHI_DB_2: D1Database;
      PHI_DB_3: D1Database;
      PHI_MIGRATIONS: D1Migration[];
    }
  }
}
