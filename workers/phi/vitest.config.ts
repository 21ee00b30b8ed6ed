import { existsSync } from "node:fs";
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { fhirValidator } from "../../e2e/fhir-schema.mjs";
import { auxWorker, d1Id, isolateBindings, isolateInstances, secretsFor, TEST_SECRETS } from "../../scripts/test-support.mjs";

/**
 * The official FHIR R4 JSON schema (the e2e flows' validator) as a service the tests call:
 * Ajv compiles it to code, which workerd does not allow, so it runs here in Node. POST a
 * resource, get `{ valid, errors }`.
 */
async function validateFhir(request: Request): Promise<Response> {
  const validate = fhirValidator();
  const valid = validate(await request.json());
  return Response.json({ valid, errors: valid ? [] : (validate.errors ?? []).slice(0, 5) });
}

const here = import.meta.dirname;
const migrations = path.resolve(here, "../../migrations/phi");

export default defineConfig(async () => ({
  plugins: [
    cloudflareTest({
      main: path.join(here, "src/index.ts"),
      wrangler: { configPath: path.join(here, "wrangler.toml") },
      miniflare: {
        bindings: {
          ...secretsFor("phi"),
          // Bulk export: a few patients per chunk, so a small test data set runs across several alarms.
          EXPORT_CHUNK_SIZE: "3",
          // ...and a few resources of each type per run, so a chunk's patients also take several runs.
          EXPORT_CHUNK_ROWS: "4",
          TEST_MIGRATIONS: existsSync(migrations) ? await readD1Migrations(migrations) : [],
          // The gateway tests obtain real tokens as the bootstrap client.
          TEST_AUTH_MIGRATIONS: await readD1Migrations(path.resolve(here, "../../migrations/auth")),
          TEST_BOOTSTRAP_CLIENT_ID: TEST_SECRETS.BOOTSTRAP_CLIENT_ID,
          TEST_BOOTSTRAP_CLIENT_SECRET: TEST_SECRETS.BOOTSTRAP_CLIENT_SECRET,
        },
        // The auth worker (token service + gateway) from its built bundle, forwarding to this
        // worker; its D1 is shared with AUTH_DB here so setup can apply its migrations.
        // ...and three more instances of phi itself on the same database and sealer (the many-isolates test).
        workers: [auxWorker("auth", { mainProject: "phi", dropServices: ["PAYMENTS", "SYNTHETIC", "DEVICES"] }), ...isolateInstances("phi", 3, "PhiAuditSealer")],
        serviceBindings: { GATEWAY: "auth", FHIR_VALIDATOR: validateFhir, ...isolateBindings("phi", 3) },
        // FAULT_DB: a real second database that never gets its migrations (the fault tests' broken store).
        // UPGRADE_DB: a real database migrated in steps by the migration test (rows written before the audit moved).
        d1Databases: { AUTH_DB: d1Id("auth"), FAULT_DB: "fault-phi-empty", UPGRADE_DB: "upgrade-phi" },
      },
    }),
  ],
  test: {
    name: "phi",
    include: ["test/**/*.test.ts"],
    silent: "passed-only" as const,
    // Our JSON log lines are for operators; errors still show.
    onConsoleLog: (log: string) => !/^\{"time":"[^"]*","level":"(debug|info|warn)"/.test(log),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ["./test/setup.ts"],
  },
}));
