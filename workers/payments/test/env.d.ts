import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** A real D1 database without its tables: the broken store of the fault tests. */
      FAULT_DB: D1Database;
      /** A real database the tenants migration test migrates in steps. */
      UPGRADE_DB: D1Database;
      /** Other instances (isolates) of this worker on the same database and sealer. */
      ISO_1: Fetcher;
      ISO_2: Fetcher;
      ISO_3: Fetcher;
    }
  }
}
