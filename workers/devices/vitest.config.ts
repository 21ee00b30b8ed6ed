import { existsSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { auxWorker, d1Id, secretsFor } from "../../scripts/test-support.mjs";

const here = import.meta.dirname;
const migrations = path.resolve(here, "../../migrations/devices");

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      main: path.join(here, "src/index.ts"),
      wrangler: { configPath: path.join(here, "wrangler.toml") },
      miniflare: {
        bindings: {
          ...secretsFor("devices"),
          TEST_MIGRATIONS: existsSync(migrations) ? await readD1Migrations(migrations) : [],
          AUTH_MIGRATIONS: await readD1Migrations(path.resolve(here, "../../migrations/auth")),
        },
        // The auth worker runs beside it (device credentials); its database is shared with the test.
        // UPGRADE_DB: a real database the tenants migration test migrates in steps.
        d1Databases: { AUTH_DB: d1Id("auth"), UPGRADE_DB: "upgrade-devices" },
        // The real gateway in front of this worker, for end-to-end checks of device credentials.
        serviceBindings: { GATEWAY: "auth" },
        workers: [auxWorker("auth", { mainProject: "devices", dropServices: ["PHI", "PAYMENTS", "SYNTHETIC"] })],
      },
    }),
  ],
  test: {
    name: "devices",
    include: ["test/**/*.test.ts"],
    silent: "passed-only" as const,
    // Our JSON log lines are for operators; errors still show.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ["./test/setup.ts"],
  },
}));
