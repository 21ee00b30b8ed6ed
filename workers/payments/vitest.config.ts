import { existsSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { isolateBindings, isolateInstances, secretsFor } from "../../scripts/test-support.mjs";

const here = import.meta.dirname;
const migrations = path.resolve(here, "../../migrations/payments");

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      main: path.join(here, "src/index.ts"),
      wrangler: { configPath: path.join(here, "wrangler.toml") },
      miniflare: {
        bindings: {
          ...secretsFor("payments"),
          TEST_MIGRATIONS: existsSync(migrations) ? await readD1Migrations(migrations) : [],
        },
        // Fault tests: a real second database that never gets its migrations (a broken store).
        // UPGRADE_DB: a real database migrated in steps by the tenants migration test.
        d1Databases: { FAULT_DB: "fault-payments-empty", UPGRADE_DB: "upgrade-payments" },
        // Three more instances of payments on the same database and sealer (the many-isolates test).
        workers: isolateInstances("payments", 3, "PaymentsAuditSealer"),
        serviceBindings: isolateBindings("payments", 3),
      },
    }),
  ],
  test: {
    name: "payments",
    include: ["test/**/*.test.ts"],
    silent: "passed-only" as const,
    // Our JSON log lines are for operators; errors still show.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ["./test/setup.ts"],
  },
}));
