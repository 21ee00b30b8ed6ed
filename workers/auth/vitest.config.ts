import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { auxWorker, secretsFor, TEST_ONLY } from "../../scripts/test-support.mjs";

const root = path.resolve(import.meta.dirname, "../..");

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      main: path.join(root, "workers/auth/src/index.ts"),
      wrangler: { configPath: path.join(root, "wrangler.toml") },
      miniflare: {
        bindings: {
          ...secretsFor("auth"),
          ...TEST_ONLY,
          TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations/auth")),
        },
        workers: ["phi", "payments", "synthetic-phi", "devices"].map((w) => auxWorker(w, { mainProject: "auth" })),
      },
    }),
  ],
  test: {
    name: "auth",
    include: ["test/**/*.test.ts"],
    silent: "passed-only" as const,
    // Our JSON log lines are for operators; errors still show.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ["./test/setup.ts"],
  },
}));
