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
      /** Fuzz harness knobs, from the environment of `vitest run` (see vitest.config.ts). */
      FUZZ_RUNS?: string;
      FUZZ_CONCURRENCY?: string;
      FUZZ_SEED?: string;
      FUZZ_REPORT?: string;
      FUZZ_ONLY?: string;
    }
  }
}
