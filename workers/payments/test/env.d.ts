import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** A real D1 database without its tables: the broken store of the fault tests. */
      FAULT_DB: D1Database;
    }
  }
}
