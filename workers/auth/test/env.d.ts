import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      PHI_MIGRATIONS: D1Migration[];
      PAYMENTS_MIGRATIONS: D1Migration[];
      DEVICES_MIGRATIONS: D1Migration[];
      PHI_DB: D1Database;
      PHI_DB_1: D1Database;
      PHI_DB_2: D1Database;
      PHI_DB_3: D1Database;
      PAYMENTS_DB: D1Database;
      DEVICES_DB: D1Database;
      /** Fault tests: an upstream that crashes, a database without its tables, the crash's marker text. */
      FAULT_THROWS: Fetcher;
      /** A worker that answers `{ principal }`: the principal header the gateway attached. */
      PRINCIPAL_ECHO: Fetcher;
      FAULT_DB: D1Database;
      FAULT_DETAIL: string;
      /** JSON {phi, payments}: the platform keyrings, for the crypto-shredding test's raw scan. */
      PLATFORM_KEYRINGS: string;
      /** Base URL of the test OTLP receiver phi exports to (test/fixtures/otlp.mjs): GET /_counts, /_find. */
      OTLP_RECEIVER: string;
      /** Base URL of the test key server a jwks_uri client publishes to (test/fixtures/jwks-server.mjs). */
      JWKS_SERVER: string;
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

declare module "vitest" {
  export interface ProvidedContext {
    /** Base URL of the test collector that refuses every export (test/fixtures/refusing-collector.mjs). */
    refusingCollector: string;
  }
}
