import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { ensureDocsAssets } from "../../scripts/docs-assets.mjs";
import { auxWorker, d1Id, FAULT_DETAIL, faultWorkers, phiShardDatabases, secretsFor, TEST_ONLY, TEST_SECRETS } from "../../scripts/test-support.mjs";
import { jwksServer } from "./test/fixtures/jwks-server.mjs";
import { testReceiver } from "./test/fixtures/otlp.mjs";

const root = path.resolve(import.meta.dirname, "../..");
// The [assets] directory of wrangler.toml (Swagger UI for /docs) must exist before the pool reads it.
ensureDocsAssets();

export default defineConfig(async () => {
  const receiver = await testReceiver();
  return {
    plugins: [
      cloudflareTest({
        main: path.join(root, "workers/auth/src/index.ts"),
        wrangler: { configPath: path.join(root, "wrangler.toml") },
        miniflare: {
          bindings: {
            ...secretsFor("auth"),
            ...TEST_ONLY,
            TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations/auth")),
            PHI_MIGRATIONS: await readD1Migrations(path.join(root, "migrations/phi")),
            PAYMENTS_MIGRATIONS: await readD1Migrations(path.join(root, "migrations/payments")),
            DEVICES_MIGRATIONS: await readD1Migrations(path.join(root, "migrations/devices")),
            FAULT_DETAIL,
            // The platform keyrings of phi and payments: the crypto-shredding test's attacker holds them (test/crypto-shred.test.ts).
            PLATFORM_KEYRINGS: JSON.stringify({ phi: TEST_SECRETS.PHI_ENCRYPTION_KEYS, payments: TEST_SECRETS.CARD_ENCRYPTION_KEYS }),
            OTLP_RECEIVER: receiver,
            // A private_key_jwt client's key server on 127.0.0.1 (jwks_uri tests).
            JWKS_SERVER: await jwksServer(),
            // Fuzz harness knobs (test/openapi-fuzz.test.ts): cases per operation, operations at once, seed, timing report.
            ...Object.fromEntries(
              ["FUZZ_RUNS", "FUZZ_CONCURRENCY", "FUZZ_SEED", "FUZZ_REPORT", "FUZZ_ONLY"].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
            ),
          },
          // The internal workers' databases, shared with the test so their migrations can be applied.
          d1Databases: { PHI_DB: d1Id("phi"), ...phiShardDatabases(), PAYMENTS_DB: d1Id("payments"), DEVICES_DB: d1Id("devices"), FAULT_DB: "fault-auth-empty" },
          // phi exports its telemetry to the receiver (batched, the default 1 s) throughout the suite.
          workers: [
            ...["phi", "payments", "synthetic-phi", "devices"].map((w) => auxWorker(w, { mainProject: "auth", extraBindings: w === "phi" ? { OTEL_EXPORTER_OTLP_ENDPOINT: receiver } : {} })),
            ...faultWorkers(),
          ],
          // Fault tests: a real service binding to an upstream that crashes (swapped in for one request).
          // And one that echoes the principal the gateway signed (test/tenant-clients.test.ts).
          serviceBindings: { FAULT_THROWS: "fault-throws", PRINCIPAL_ECHO: "principal-echo" },
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
      // A real OTLP endpoint on 127.0.0.1 that refuses every export (metrics exporter fault test).
      globalSetup: ["./test/fixtures/refusing-collector.mjs"],
    },
  };
});
