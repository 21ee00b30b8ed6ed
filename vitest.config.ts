import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: ["workers/*/vitest.config.ts"],
    globalSetup: ["./scripts/test-global-setup.mjs"],
    // Our JSON log lines are for operators: only errors reach the test output (the fuzz alone makes
    // ~60,000 requests). Console options are read from the root config, not from the projects'.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    coverage: {
      provider: "istanbul",
      include: ["workers/*/src/**/*.ts", "shared/**/*.ts"],
      exclude: ["shared/testing/**", "**/worker-configuration.d.ts"],
      // Issue targets: at least 90 % of lines per worker and for shared/.
      thresholds: {
        "workers/auth/src/**": { lines: 90 },
        "shared/**": { lines: 90 },
      },
      reporter: ["text-summary", "json-summary", "text"],
    },
  },
});
