import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      TEST_AUTH_MIGRATIONS: D1Migration[];
      TEST_BOOTSTRAP_CLIENT_ID: string;
      TEST_BOOTSTRAP_CLIENT_SECRET: string;
      /** The auth worker (gateway), as clients reach it. */
      GATEWAY: Fetcher;
      /** The FHIR R4 JSON schema validator (Node side, see vitest.config.ts). */
      FHIR_VALIDATOR: Fetcher;
      /** The auth worker's database (shared storage), for its migrations. */
      AUTH_DB: D1Database;
      /** A real D1 database without its tables: the broken store of the fault tests. */
      FAULT_DB: D1Database;
      /** A real D1 database the migration test upgrades step by step. */
      UPGRADE_DB: D1Database;
      /** Other instances (isolates) of this worker on the same database and sealer. */
      ISO_1: Fetcher;
      ISO_2: Fetcher;
      ISO_3: Fetcher;
    }
  }
}
