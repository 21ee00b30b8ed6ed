import { existsSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { auxWorker, d1Id, phiShardDatabases, secretsFor } from "../../scripts/test-support.mjs";

const here = import.meta.dirname;
const phiMigrations = path.resolve(here, "../../migrations/phi");

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      main: path.join(here, "src/index.ts"),
      wrangler: { configPath: path.join(here, "wrangler.toml") },
      miniflare: {
        bindings: {
          ...secretsFor("synthetic-phi"),
          PHI_MIGRATIONS: existsSync(phiMigrations) ? await readD1Migrations(phiMigrations) : [],
        },
        // The same database id as the phi worker's: tests read what loading wrote.
        d1Databases: { PHI_DB: d1Id("phi"), ...phiShardDatabases() },
        workers: [auxWorker("phi")],
      },
    }),
  ],
  test: {
    name: "synthetic-phi",
    include: ["test/**/*.test.ts"],
    silent: "passed-only" as const,
    // Our JSON log lines are for operators; errors still show.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ["./test/setup.ts"],
  },
}));
