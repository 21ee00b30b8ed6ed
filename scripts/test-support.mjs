// Node-side helpers for the vitest configs: test secrets (fresh per run, shared by every
// worker in the run) and auxiliary workers built from the real bundles and wrangler configs.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import path from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ensureDocsAssets } from "./docs-assets.mjs";
import { ROOT, WORKERS } from "./workers.mjs";

const b64u = (buf) => buf.toString("base64url");

function es256(kid) {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { ...privateKey.export({ format: "jwk" }), kid, alg: "ES256" };
}

/** One set of secrets per test run (module state: evaluated once in vitest's main process). */
const current = es256("test-current");
const previous = es256("test-previous");
export const TEST_SECRETS = {
  GATEWAY_HMAC_KEY: b64u(randomBytes(32)),
  // Rotation in progress: `test-current` signs, `test-previous` still verifies.
  JWT_PRIVATE_KEYS: JSON.stringify([current, previous]),
  JWT_SIGNING_KID: "test-current",
  BOOTSTRAP_CLIENT_ID: "test-bootstrap",
  BOOTSTRAP_CLIENT_SECRET: b64u(randomBytes(32)),
  PHI_ENCRYPTION_KEYS: `k2:${b64u(randomBytes(32))},k1:${b64u(randomBytes(32))}`,
  PHI_INDEX_KEY: b64u(randomBytes(32)),
  CARD_ENCRYPTION_KEYS: `k1:${b64u(randomBytes(32))}`,
  CARD_FINGERPRINT_KEY: b64u(randomBytes(32)),
};

/** The keys only tests see: the private JWK of the previous key (to sign rotation cases). */
export const TEST_ONLY = { PREVIOUS_KEY: JSON.stringify(previous), CURRENT_KEY: JSON.stringify(current) };

export const BUILD_DIR = path.join(ROOT, ".tmp", "build", "local");

export function workerInfo(name) {
  const w = WORKERS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown worker ${name}`);
  return w;
}

/** Secrets a worker reads, chosen from TEST_SECRETS by what its .dev.vars generator declares. */
export function secretsFor(name) {
  // LOG_LEVEL debug: every worker writes its access lines too, so the suites that scan log output for leaks see them all.
  const common = { GATEWAY_HMAC_KEY: TEST_SECRETS.GATEWAY_HMAC_KEY, ENVIRONMENT: "test", LOG_LEVEL: "debug" };
  switch (name) {
    case "auth":
      return {
        ...common,
        JWT_PRIVATE_KEYS: TEST_SECRETS.JWT_PRIVATE_KEYS,
        JWT_SIGNING_KID: TEST_SECRETS.JWT_SIGNING_KID,
        BOOTSTRAP_CLIENT_ID: TEST_SECRETS.BOOTSTRAP_CLIENT_ID,
        BOOTSTRAP_CLIENT_SECRET: TEST_SECRETS.BOOTSTRAP_CLIENT_SECRET,
      };
    case "phi":
      return { ...common, PHI_ENCRYPTION_KEYS: TEST_SECRETS.PHI_ENCRYPTION_KEYS, PHI_INDEX_KEY: TEST_SECRETS.PHI_INDEX_KEY };
    case "payments":
      return {
        ...common,
        CARD_ENCRYPTION_KEYS: TEST_SECRETS.CARD_ENCRYPTION_KEYS,
        CARD_FINGERPRINT_KEY: TEST_SECRETS.CARD_FINGERPRINT_KEY,
      };
    default:
      return common;
  }
}

/**
 * Miniflare options for running `name` as an auxiliary worker from its built bundle
 * (built by the root globalSetup), with the bindings of its own wrangler config.
 */
/**
 * @param {string} name
 * @param {{ extraBindings?: Record<string, unknown>, mainProject?: string, dropServices?: string[] }} [opts]
 */
export function auxWorker(name, { extraBindings = {}, mainProject, dropServices = [] } = {}) {
  const w = workerInfo(name);
  if (name === "auth") ensureDocsAssets(); // its [assets] directory must exist
  // The bundle is already built: wrangler's module rules are for sources, and Miniflare 5
  // refuses them on a worker given by scriptPath.
  const { workerOptions: { modulesRules: _rules, ...workerOptions } } = unstable_getMiniflareWorkerOptions(path.join(ROOT, w.config));
  const outdir = path.join(BUILD_DIR, name);
  // The worker under test runs inside the pool's runner, named after its project:
  // bindings to it must point there.
  const serviceBindings = Object.fromEntries(
    Object.entries(workerOptions.serviceBindings ?? {})
      .filter(([k]) => !dropServices.includes(k))
      .map(([k, v]) => [
      k,
      mainProject && typeof v === "object" && v.name === mainProject ? { ...v, name: runnerName(mainProject) } : v,
    ]),
  );
  return {
    ...workerOptions,
    serviceBindings,
    name,
    modules: true,
    scriptPath: path.join(outdir, "index.js"),
    modulesRoot: outdir,
    bindings: { ...workerOptions.bindings, ...secretsFor(name), ...extraBindings },
  };
}

/** The name the vitest pool gives the worker under test in project `project`. */
export function runnerName(project) {
  return `vitest-pool-workers-runner-${project.replace(/[^a-z0-9-]/gi, "_")}`;
}

/** D1 database id of a worker's local database (tests share storage by using the same id); `binding` picks a PHI shard. */
export function d1Id(name, binding = "DB") {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, workerInfo(name).config));
  return workerOptions.d1Databases[binding].id;
}

/** The PHI shards besides shard 0 (DB), as test bindings PHI_DB_1 ... of phi's databases. */
export const PHI_EXTRA_SHARDS = ["DB_1", "DB_2", "DB_3"];
export function phiShardDatabases() {
  return Object.fromEntries(PHI_EXTRA_SHARDS.map((b) => [`PHI_${b}`, d1Id("phi", b)]));
}

/**
 * A test-only upstream for the gateway's fault tests (never bundled: it exists only in
 * the auth project's Miniflare config): `fault-throws` throws from its fetch handler, as an
 * internal worker with an uncaught exception does. Its error names a fake internal detail
 * that must never reach a client.
 */
export const FAULT_DETAIL = "fault-internal-detail-7f3a";
export function faultWorkers() {
  return [
    {
      name: "fault-throws",
      modules: true,
      compatibilityDate: "2025-01-01",
      script: `export default { async fetch(req) { await req.body?.cancel(); throw new Error("${FAULT_DETAIL}: connection string in the stack"); } };`,
    },
    // Answers with the principal header the gateway attached (tests that check what it signs), and the URL and
    // every header it received (tests that check what the gateway forwards and strips).
    {
      name: "principal-echo",
      modules: true,
      compatibilityDate: "2025-01-01",
      script: `export default { async fetch(req) { await req.body?.cancel(); return Response.json({ principal: req.headers.get("x-gateway-principal"), url: req.url, headers: Object.fromEntries(req.headers) }); } };`,
    },
  ];
}

/**
 * More instances of the worker under test (`project`), each its own worker and isolate built from the
 * real bundle, sharing the project's D1 database (same database id: same storage) and its ONE audit
 * sealer (their AUDIT_SEALER binding points at the class in the pool's runner): what several isolates
 * of one deployed Worker are. Named `<project>-iso-1` ... for service bindings from the test.
 * @param {string} project
 * @param {number} count
 * @param {string} sealerClass
 */
export function isolateInstances(project, count, sealerClass) {
  return Array.from({ length: count }, (_, i) => {
    const w = auxWorker(project);
    return {
      ...w,
      name: `${project}-iso-${i + 1}`,
      durableObjects: { ...w.durableObjects, AUDIT_SEALER: { className: sealerClass, scriptName: runnerName(project) } },
    };
  });
}

/** Service bindings from the test to those instances: ISO_1 ... ISO_n. */
export function isolateBindings(project, count) {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`ISO_${i + 1}`, `${project}-iso-${i + 1}`]));
}
