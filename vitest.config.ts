import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: ["workers/*/vitest.config.ts"],
    globalSetup: ["./scripts/test-global-setup.mjs"],
    coverage: {
      provider: "istanbul",
      include: ["workers/*/src/**/*.ts", "shared/**/*.ts"],
      reporter: ["text-summary", "json-summary", "text"],
    },
  },
});
