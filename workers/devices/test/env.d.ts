import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      AUTH_DB: D1Database;
      AUTH_MIGRATIONS: D1Migration[];
      GATEWAY: Fetcher;
      /** A real database the tenants migration test migrates in steps. */
      UPGRADE_DB: D1Database;
    }
  }
}
