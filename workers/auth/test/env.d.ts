import type { D1Migration } from "cloudflare:test";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** Private JWKs of the test keys, to forge rotation and attack cases. */
      PREVIOUS_KEY: string;
      CURRENT_KEY: string;
    }
  }
}
