import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: ["workers/*/vitest.config.ts"],
    globalSetup: ["./scripts/test-global-setup.mjs"],
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
