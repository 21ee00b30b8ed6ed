import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      PHI_MIGRATIONS: D1Migration[];
      PAYMENTS_MIGRATIONS: D1Migration[];
      DEVICES_MIGRATIONS: D1Migration[];
      PHI_DB: D1Database;
      PAYMENTS_DB: D1Database;
      DEVICES_DB: D1Database;
      /** Private JWKs of the test keys, to forge rotation and attack cases. */
      PREVIOUS_KEY: string;
      CURRENT_KEY: string;
    }
  }
}
