#!/usr/bin/env node
// Cost growth: latency of Patient search, paging, the audit trail by patient and audit-chain verification at 1k, 10k and 100k stored
// patients, on the built bundles (Miniflare, real gateway, real tokens). Search and paging must stay flat;
// verification is linear and its rate is stated. Standalone: `node bench/growth.mjs` writes
// bench/results/growth-<stamp>.md (+ .json); `growth(record)` is the same row callback bench/run.mjs uses.
//
// Seeding. The first size goes through the API (POST /v1/phi/Patient via the gateway, GROWTH_CONCURRENCY in
// flight) and its rate is reported: on 2 shared cores it is tens of creations per second, so 100k that way would
// take the better part of an hour. The rest is written straight into the phi D1 with rows made by phi's own code
// (its TypeScript bundled here with esbuild): PatientSchema parses the body, store/seal.ts seals it under the tenant's
// data key (the one the API-made patients created, unwrapped with the local PHI_ENCRYPTION_KEYS) with its id in the AAD, fhir/index-tokens.ts computes the blind indexes with PHI_INDEX_KEY,
// store/resources.ts writeVersionStatements gives the very statements the worker runs, audit/trail.ts auditColumns
// and shared/audit/hash.ts chainHash (over the row as the sealer reads it, splitRow) extend the sealed audit chain from its head (each record inserted pending and
// sealed in the same batch, as the sealer would), with the actor of the API-made records.
// They are written by a bench-only worker bound to phi's D1, 250 patients per batch, as multi-row INSERTs of the
// same rows (the index DELETE before a fresh id's rows removes nothing and is left out).
// The run then proves the rows valid through the API: every search decrypts and checks what it found, and the
// audit verify must answer ok over every record. GROWTH_SEED=api seeds everything through the API instead.
// Sizes are cumulative (1k, then 9k more, then 90k more).
//   GROWTH_SIZES="1000,10000,100000"  sizes to measure at (ascending)
//   GROWTH_SEED=mixed|api             API for the first size then direct (default), or API throughout
//   GROWTH_CONCURRENCY=32             creations in flight while seeding through the API
//   GROWTH_SAMPLES=50                 sequential requests per query and size
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker } from "../scripts/build.mjs";
import { ensureDevSecrets, parseDotenv } from "../scripts/dev-secrets.mjs";
import { pathToFileURL } from "node:url";
import { databasesOf, ROOT, WORKERS } from "../scripts/workers.mjs";
import { migrate } from "./lib.mjs";

const SIZES = (process.env.GROWTH_SIZES ?? "1000,10000,100000")
  .split(",")
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0)
  .sort((a, b) => a - b);
const CONCURRENCY = Number(process.env.GROWTH_CONCURRENCY ?? 32);
const SAMPLES = Number(process.env.GROWTH_SAMPLES ?? 50);
const SEED_MODE = process.env.GROWTH_SEED === "api" ? "api" : "mixed";
/** Patients per D1 batch when writing directly. */
const CHUNK = 250;
const VERIFY_RUNS = 3;
/** Patients per family name: a family search returns this many whatever the size. */
const PER_FAMILY = 3;
/** Page size for the paging measurements (first page and deep page alike). */
const PAGE = 50;
/** Where the deep page sits in the stored set (fraction of it). */
const DEEP = 0.9;

const SEEDER = `export default {
  async fetch(request, env) {
    const stmts = await request.json();
    const results = await env.DB.batch(stmts.map((s) => env.DB.prepare(s.sql).bind(...s.params)));
    return Response.json(results.map((r) => r.results));
  },
};`;

/** platform() of bench/run.mjs, with a persistence directory we remove afterwards (100k patients take space). */
export async function platform() {
  const vars = ensureDevSecrets({ quiet: true });
  const outRoot = path.join(ROOT, ".tmp", "growth-build");
  const ordered = [...WORKERS].sort((a, b) => (a.name === "auth" ? -1 : b.name === "auth" ? 1 : 0));
  const workers = ordered.map((w) => {
    const { outdir } = buildWorker(w.name, { outRoot, minify: true });
    // Module rules are for sources; Miniflare 5 refuses them on a pre-built bundle.
    const { workerOptions: { modulesRules: _rules, ...workerOptions } } = unstable_getMiniflareWorkerOptions(path.join(ROOT, w.config));
    return { ...workerOptions, name: w.name, modules: true, scriptPath: path.join(outdir, "index.js"), modulesRoot: outdir };
  });
  // A bench-only worker (not deployed) bound to phi's own D1 database, so Node can run statements on it in
  // batches (Miniflare's Node-side D1 proxy prepares each statement with a synchronous round trip).
  const phiDb = workers.find((w) => w.name === "phi").d1Databases;
  workers.push({ name: "growth-seeder", modules: true, script: SEEDER, compatibilityDate: "2026-08-15", d1Databases: phiDb });
  let runtimeTail = "";
  const persist = mkdtempSync(path.join(os.tmpdir(), "bench-growth-"));
  // Miniflare 5 takes its own option shape; ours (and wrangler's) are the v4 one it converts.
  const mf = new Miniflare(convertV4MiniflareOptions({
    workers,
    host: "127.0.0.1",
    port: 0,
    // Miniflare 5 keeps every resource (D1, Durable Objects) under one persistence path.
    resourcePersistencePath: persist,
    // Drained, keeping the runtime's last words for an error report (workers log no PHI).
    handleRuntimeStdio(stdout, stderr) {
      const keep = (chunk) => {
        runtimeTail = (runtimeTail + chunk.toString()).slice(-4000);
      };
      stdout.on("data", keep);
      stderr.on("data", keep);
    },
  }));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  for (const w of WORKERS) for (const [binding, , dir] of databasesOf(w)) await migrate(await mf.getD1Database(binding, w.name), dir);
  const basic = `Basic ${Buffer.from(`${vars.BOOTSTRAP_CLIENT_ID}:${vars.BOOTSTRAP_CLIENT_SECRET}`).toString("base64")}`;
  const token = async (scope) => {
    const r = await fetch(`${url}/oauth/token`, {
      method: "POST",
      headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", scope }),
    });
    if (r.status !== 200) throw new Error(`token ${r.status} ${await r.text()}`);
    return (await r.json()).access_token;
  };
  const dispose = async () => {
    await mf.dispose();
    rmSync(persist, { recursive: true, force: true });
  };
  const seeder = await mf.getWorker("growth-seeder");
  /** Runs statements ({sql, params}) on the phi D1 in one batch; returns each one's result rows. */
  const phiBatch = async (stmts) => {
    const r = await seeder.fetch("http://seeder/", { method: "POST", body: JSON.stringify(stmts) });
    if (r.status !== 200) throw new Error(`phi batch: ${r.status} ${(await r.text()).slice(0, 300)}`);
    return r.json();
  };
  return { mf, url, token, dispose, phiBatch, runtimeTail: () => runtimeTail };
}

/** A bearer token renewed well before it could expire (a full run takes minutes). */
export function bearer(p, scope) {
  let tok;
  let at = 0;
  return async () => {
    if (!tok || Date.now() - at > 4 * 60_000) {
      tok = await p.token(scope);
      at = Date.now();
    }
    return { authorization: `Bearer ${tok}` };
  };
}

const familyOf = (i) => `Growth${Math.floor(i / PER_FAMILY).toString(36)}`;
const identifierOf = (i) => `GR-${i}`;

/** A synthetic Patient (made-up values, no real person). */
function patient(i) {
  return {
    resourceType: "Patient",
    name: [{ use: "official", family: familyOf(i), given: [`Given${i % 997}`] }],
    gender: i % 2 ? "female" : "male",
    birthDate: `19${String(40 + (i % 60)).padStart(2, "0")}-0${1 + (i % 9)}-1${i % 10}`,
    identifier: [{ system: "urn:example:growth", value: identifierOf(i) }],
    address: [{ line: [`${i} Bench St`], city: "Springfield", state: "MA", postalCode: "01101" }],
  };
}

/** Creates patients from..to-1 through the gateway, `CONCURRENCY` in flight. Throws on any failure. */
export async function seed(p, auth, from, to) {
  let next = from;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= to) return;
      const r = await fetch(`${p.url}/v1/phi/Patient`, {
        method: "POST",
        headers: { ...(await auth()), "content-type": "application/fhir+json" },
        body: JSON.stringify(patient(i)),
      });
      const text = await r.text();
      if (r.status !== 201) throw new Error(`create #${i}: ${r.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { seconds: (performance.now() - t0) / 1000 };
}

/** phi's own modules that make a stored Patient version, its index and its audit record. */
const PHI_ENTRY = `
export { seal } from "./workers/phi/src/store/seal";
export { indexEntries, patientValues } from "./workers/phi/src/fhir/index-tokens";
export { PatientSchema } from "./workers/phi/src/fhir/patient";
export { versionMeta } from "./workers/phi/src/service/present";
export { writeVersionStatements } from "./workers/phi/src/store/resources";
export { AUDIT_TABLE, auditColumns } from "./workers/phi/src/audit/trail";
export { chainHash, splitRow } from "./shared/audit/hash";
export { decryptField, fromBase64Url, parseKeyring } from "./shared/crypto";
`;

export async function phiCode() {
  const outfile = path.join(ROOT, ".tmp", "growth-build", "phi-rows.mjs");
  await build({
    stdin: { contents: PHI_ENTRY, resolveDir: ROOT, loader: "ts", sourcefile: "growth-phi-rows.ts" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outfile,
    logLevel: "silent",
    // CommonJS dependencies (OpenTelemetry's, through the logger) require Node built-ins.
    banner: { js: "import { createRequire as __growthRequire } from 'node:module'; const require = __growthRequire(import.meta.url);" },
    // The audit trail's module reaches the sealer Durable Object (and telemetry its wrapper), whose base
    // classes exist only in workerd; nothing of them runs here, so Node gets empty stand-ins.
    plugins: [
      {
        name: "workerd-classes",
        setup(b) {
          b.onResolve({ filter: /^cloudflare:workers$/ }, () => ({ path: "cloudflare:workers", namespace: "workerd-classes" }));
          b.onLoad({ filter: /.*/, namespace: "workerd-classes" }, () => ({
            contents: "export class DurableObject {} export class WorkerEntrypoint {} export const env = {};",
            loader: "js",
          }));
        },
      },
    ],
  });
  return import(pathToFileURL(outfile).href);
}

/** D1's cap on bound parameters per statement (production); kept here too. */
const MAX_PARAMS = 100;

/**
 * The same rows in fewer statements: consecutive single-row INSERTs of one SQL text become multi-row INSERTs
 * (at most MAX_PARAMS parameters each). The `DELETE FROM search_index` that writeVersionStatements puts before a
 * version's index rows removes nothing for a fresh id, so it is left out; anything else is refused.
 */
function multiRow(stmts) {
  const groups = new Map();
  for (const s of stmts) {
    if (s.sql.startsWith("DELETE FROM search_index WHERE tenant_id = ? AND resource_type = ? AND resource_id = ?")) continue;
    if (!/^INSERT INTO \w+ \([^)]*\) VALUES \([?, ]+\)$/.test(s.sql)) throw new Error(`unexpected statement: ${s.sql.slice(0, 80)}`);
    const g = groups.get(s.sql) ?? [];
    g.push(s.params);
    groups.set(s.sql, g);
  }
  const out = [];
  for (const [sql, rows] of groups) {
    const at = sql.lastIndexOf(" VALUES ");
    const tuple = sql.slice(at + " VALUES ".length);
    const perStatement = Math.max(1, Math.floor(MAX_PARAMS / rows[0].length));
    for (let i = 0; i < rows.length; i += perStatement) {
      const part = rows.slice(i, i + perStatement);
      out.push({ sql: `${sql.slice(0, at)} VALUES ${part.map(() => tuple).join(", ")}`, params: part.flat() });
    }
  }
  return out;
}

/**
 * Writes patients from..to-1 straight into the phi D1, each exactly as POST /v1/phi/Patient would
 * (see the header): the version, its index rows and its chained audit record in one batch per chunk.
 */
export async function seedDirect(p, phi, from, to) {
  const t0 = performance.now();
  const vars = parseDotenv(readFileSync(path.join(ROOT, "workers", "phi", ".dev.vars"), "utf8"));
  const platform = await phi.parseKeyring(vars.PHI_ENCRYPTION_KEYS);
  // Records what phi's store code prepares, for the seeder worker to run.
  const db = { prepare: (sql) => ({ sql, params: [], bind: (...params) => ({ sql, params }) }) };
  const table = phi.AUDIT_TABLE;
  // The API-made records are sealed by phi's sealer object within AUDIT_SEAL_DELAY_MS: extend the chain after them.
  for (let waited = 0; ; waited += 200) {
    const [[{ n }]] = await p.phiBatch([{ sql: `SELECT COUNT(*) AS n FROM ${table} WHERE hash IS NULL`, params: [] }]);
    if (n === 0) break;
    if (waited > 30_000) throw new Error(`${n} audit records stayed pending: phi's sealer did not run`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const [[head]] = await p.phiBatch([{ sql: `SELECT * FROM ${table} ORDER BY seq DESC LIMIT 1`, params: [] }]);
  if (!head) throw new Error("direct seeding continues a chain the API started; it is empty");
  const [[{ sealed }]] = await p.phiBatch([{ sql: `SELECT COUNT(*) AS sealed FROM ${table}`, params: [] }]);
  let sealedCount = sealed;
  // The actor of the last API-made record: the bench's own client, token, purpose and tenant.
  const tenant = head.tenant_id;
  const actor = {
    tenantId: tenant,
    sub: head.actor_sub,
    clientId: head.actor_client,
    roles: head.actor_roles ? head.actor_roles.split(",") : [],
    tokenId: head.token_id,
    clientIp: head.client_ip,
    purposeOfUse: head.purpose_of_use,
  };
  // The tenant's data key, which the API made for its first write (shared/keys/tenant-keys.ts), unwrapped as phi does:
  // the bodies are sealed under it, as phi seals them.
  const [[key]] = await p.phiBatch([{ sql: "SELECT kid, wrapped FROM tenant_keys WHERE tenant_id = ?", params: [tenant] }]);
  if (!key?.wrapped) throw new Error(`no data key of ${tenant} in phi's database`);
  const material = phi.fromBase64Url(await phi.decryptField(platform, key.wrapped, `tenant_keys/phi/${tenant}/${key.kid}`));
  const dataKey = await crypto.subtle.importKey("raw", material, "AES-GCM", false, ["encrypt", "decrypt"]);
  const ring = { currentKid: key.kid, keys: new Map([...platform.keys, [key.kid, dataKey]]) };
  const scope = { db, tenant };
  let seq = head.seq;
  let prevHash = head.hash;
  let writeSeconds = 0;
  let pending = Promise.resolve();
  for (let start = from; start < to; start += CHUNK) {
    const now = new Date();
    const made = await Promise.all(
      Array.from({ length: Math.min(CHUNK, to - start) }, async (_, k) => {
        const input = phi.PatientSchema.parse(patient(start + k));
        const id = crypto.randomUUID();
        const lastUpdated = now.toISOString();
        const resource = { ...input, resourceType: "Patient", id, meta: phi.versionMeta(input.meta, { version_id: 1, last_updated: lastUpdated }) };
        const row = {
          resource_type: "Patient",
          id,
          version_id: 1,
          last_updated: lastUpdated,
          deleted: 0,
          sealed: await phi.seal(ring, "Patient", id, 1, resource),
          patient_id: id,
        };
        return { row, index: await phi.indexEntries(vars.PHI_INDEX_KEY, "Patient", phi.patientValues(input, id)) };
      }),
    );
    const stmts = [];
    const seals = [];
    for (const { row, index } of made) {
      const columns = phi.auditColumns(
        { ...actor, requestId: crypto.randomUUID(), traceId: "" },
        { action: "create", resourceType: "Patient", resourceId: row.id, patientIds: [row.id], outcome: "success", reason: "" },
        now,
      );
      const names = Object.keys(columns);
      seq += 1;
      // Hashed as the sealer hashes a stored row (shared/audit/hash.ts: a late column at its old default is left out).
      const hash = await phi.chainHash(prevHash, seq, phi.splitRow({ seq, prev_hash: null, hash: null, sealed_at: null, ...columns }).data);
      stmts.push(
        ...phi.writeVersionStatements(scope, row, index),
        db.prepare(`INSERT INTO ${table} (seq, ${names.join(", ")}) VALUES (?${", ?".repeat(names.length)})`).bind(seq, ...names.map((n) => columns[n])),
      );
      seals.push([seq, prevHash, hash, now.toISOString()]);
      prevHash = hash;
    }
    // Sealed in the same batch as the sealer would (the triggers allow the seal columns once, NULL -> value),
    // and a checkpoint for the chunk.
    const sealStatements = [];
    for (let i = 0; i < seals.length; i += 25) {
      const part = seals.slice(i, i + 25);
      sealStatements.push({
        sql:
          `UPDATE ${table} SET prev_hash = v.column2, hash = v.column3, sealed_at = v.column4 ` +
          `FROM (VALUES ${part.map(() => "(?, ?, ?, ?)").join(", ")}) AS v WHERE ${table}.seq = v.column1`,
        params: part.flat(),
      });
    }
    sealedCount += seals.length;
    sealStatements.push({
      sql: `INSERT INTO ${table}_checkpoints (sealed_up_to, head_hash, sealed_count, batch, at) VALUES (?, ?, ?, ?, ?)`,
      params: [seq, prevHash, sealedCount, seals.length, now.toISOString()],
    });
    // Write this chunk while the next one is made (the chain order is kept: chunks are made in turn).
    await pending;
    pending = (async () => {
      const w0 = performance.now();
      await p.phiBatch([...multiRow(stmts), ...sealStatements]);
      writeSeconds += (performance.now() - w0) / 1000;
    })();
  }
  await pending;
  return { seconds: (performance.now() - t0) / 1000, writeSeconds };
}

/**
 * fetch, tried once more on a connection error (no HTTP answer at all: a socket reset on a shared, overloaded
 * machine was seen once in a long run); never on an HTTP error. Each retry is counted and reported.
 */
let networkRetries = 0;
async function fetchOnceMore(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    networkRetries++;
    return fetch(url, init);
  }
}

const quantile = (sorted, f) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];

/** `SAMPLES` sequential requests (latency, not throughput); `check` validates each answer. */
/**
 * `SAMPLES` rounds of sequential requests (latency, not throughput), one of each query per round, so that the
 * machine's drift (it is shared) falls on every query alike. query: { url(k), check(body, k) } where check throws
 * when the answer is not what the seeded data must give.
 */
async function sample(queries, auth) {
  const times = queries.map(() => []);
  for (let k = 0; k < SAMPLES; k++) {
    for (const [j, q] of queries.entries()) {
      const url = q.url(k);
      const headers = await auth();
      const t0 = performance.now();
      const r = await fetchOnceMore(url, { headers });
      const body = await r.json();
      times[j].push(performance.now() - t0);
      if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(body).slice(0, 200)}`);
      q.check(body, k);
    }
  }
  return times.map((t) => {
    t.sort((a, b) => a - b);
    return { p50: quantile(t, 0.5), p99: quantile(t, 0.99) };
  });
}

const nextLink = (bundle) => bundle.link?.find((l) => l.relation === "next")?.url;
const cursorOf = (link) => new URL(link, "http://x").searchParams.get("_cursor");

/** Follows `next` links from the first page to the page starting near `DEEP` of the set; returns its cursor. */
async function deepCursor(p, auth, size) {
  const pages = Math.floor((size * DEEP) / PAGE);
  let url = `${p.url}/v1/phi/Patient?_count=${PAGE}`;
  const t0 = performance.now();
  for (let k = 0; k < pages; k++) {
    const r = await fetchOnceMore(url, { headers: await auth() });
    const body = await r.json();
    if (r.status !== 200) throw new Error(`walk page ${k}: ${r.status}`);
    const link = nextLink(body);
    if (!link) throw new Error(`walk ended at page ${k} of ${pages}`);
    url = `${p.url}/v1/phi/Patient?_cursor=${encodeURIComponent(cursorOf(link))}`;
  }
  return { url, pages, position: pages * PAGE, walkSeconds: (performance.now() - t0) / 1000 };
}

/** The statements phi issues on these paths, as phi/src/store builds them, and SQLite's plan for each. */
const PLANNED = [
  // store/search-query.ts searchPage: the page (snapshot versions, keyset) and its current versions in one statement.
  {
    what: "search page, one exact condition (searchPage, id order)",
    sql: "WITH page AS (SELECT v.id AS id, v.last_updated AS sort_key, v.patient_id AS patient_id FROM resource_versions v WHERE v.resource_type = ? AND v.last_updated <= ? AND v.deleted = 0 AND v.version_id = (SELECT MAX(w.version_id) FROM resource_versions w WHERE w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?) AND v.id IN (SELECT resource_id FROM search_index WHERE resource_type = ? AND param = ? AND token = ?) ORDER BY v.id LIMIT ?) SELECT page.sort_key AS sort_key, h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.sealed, h.patient_id FROM page JOIN resource_versions h ON h.resource_type = ? AND h.id = page.id AND h.version_id = (SELECT MAX(x.version_id) FROM resource_versions x WHERE x.resource_type = h.resource_type AND x.id = h.id) ORDER BY page.id",
    binds: ["Patient", "9999", "9999", "Patient", "family", "0".repeat(64), 21, "Patient"],
  },
  {
    what: "paging, no condition (searchPage, cursor after an id)",
    sql: "WITH page AS (SELECT v.id AS id, v.last_updated AS sort_key, v.patient_id AS patient_id FROM resource_versions v WHERE v.resource_type = ? AND v.last_updated <= ? AND v.deleted = 0 AND v.version_id = (SELECT MAX(w.version_id) FROM resource_versions w WHERE w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?) AND v.id > ? ORDER BY v.id LIMIT ?) SELECT page.sort_key AS sort_key, h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.sealed, h.patient_id FROM page JOIN resource_versions h ON h.resource_type = ? AND h.id = page.id AND h.version_id = (SELECT MAX(x.version_id) FROM resource_versions x WHERE x.resource_type = h.resource_type AND x.id = h.id) ORDER BY page.id",
    binds: ["Patient", "9999", "9999", "8", PAGE + 1, "Patient"],
  },
  {
    what: "paging in -_lastUpdated order (searchPage, cursor after a (lastUpdated, id))",
    sql: "WITH page AS (SELECT v.id AS id, v.last_updated AS sort_key, v.patient_id AS patient_id FROM resource_versions v WHERE v.resource_type = ? AND v.last_updated <= ? AND v.deleted = 0 AND v.version_id = (SELECT MAX(w.version_id) FROM resource_versions w WHERE w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?) AND (v.last_updated, v.id) < (?, ?) ORDER BY v.last_updated DESC, v.id DESC LIMIT ?) SELECT page.sort_key AS sort_key, h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.sealed, h.patient_id FROM page JOIN resource_versions h ON h.resource_type = ? AND h.id = page.id AND h.version_id = (SELECT MAX(x.version_id) FROM resource_versions x WHERE x.resource_type = h.resource_type AND x.id = h.id) ORDER BY page.sort_key DESC, page.id DESC",
    binds: ["Patient", "9999", "9999", "2026-01-01T00:00:00.000Z", "8", PAGE + 1, "Patient"],
  },
  { what: "audit seal: pending records (sealPending)", sql: "SELECT * FROM phi_audit WHERE hash IS NULL ORDER BY seq LIMIT ?", binds: [501] },
  { what: "audit verify: one page (verifyChain)", sql: "SELECT * FROM phi_audit WHERE seq > ? ORDER BY seq LIMIT ?", binds: [1, 1000] },
];

async function queryPlans(p) {
  const out = [];
  for (const q of PLANNED) {
    const [results] = await p.phiBatch([{ sql: `EXPLAIN QUERY PLAN ${q.sql}`, params: q.binds }]);
    const plan = results.map((r) => r.detail).join("; ");
    // `SCAN t` with no index is a walk of the whole table, unless it goes in rowid order (no temp b-tree to sort)
    // and LIMIT 1 stops it at the first row, as the chain head query does.
    // `SCAN page` reads the page a statement materialized itself (at most a page of rows), not a table.
    const scans = /\bSCAN (?!page\b)\w+(;|$)/.test(plan);
    const sorts = /TEMP B-TREE/.test(plan);
    const reading = !scans
      ? "indexed: cost follows the rows returned, not the table"
      : !sorts && /ORDER BY seq DESC LIMIT 1$/.test(q.sql)
        ? "rowid order, stopped by LIMIT 1 after one row: constant"
        : "FULL SCAN: grows with the table";
    out.push({ what: q.what, plan, reading });
  }
  return out;
}

/** Runs the whole growth benchmark; returns the table rows, seeding figures and query plans. */
export async function growth(record) {
  const p = await platform();
  const table = [];
  const seeding = [];
  let plans;
  try {
    const writer = bearer(p, "phi:write");
    const reader = bearer(p, "phi:read");
    const auditor = bearer(p, "audit:read");
    const phi = SEED_MODE === "api" ? undefined : await phiCode();
    let stored = 0;
    for (const size of SIZES) {
      const how = stored === 0 || !phi ? "api" : "direct";
      const { seconds: secs, writeSeconds } = how === "api" ? await seed(p, writer, stored, size) : await seedDirect(p, phi, stored, size);
      const perSecond = (size - stored) / secs;
      seeding.push({ from: stored, to: size, how, seconds: secs, writeSeconds, perSecond });
      const note =
        how === "api"
          ? `${secs.toFixed(1)} s, POST through the gateway, ${CONCURRENCY} in flight`
          : `${secs.toFixed(1)} s (${writeSeconds.toFixed(1)} s of it in D1), rows made by phi's code written straight into D1 in batches of ${CHUNK}`;
      record({ scenario: `growth: seed ${stored}→${size} patients`, what: `creations/s (${how})`, value: perSecond, unit: "patients/s", note });
      stored = size;
      const scenario = `growth: ${size} patients`;
      const families = Math.floor(size / PER_FAMILY);
      // Spread the targets over the whole stored set (a fixed stride), so no answer is a warm repeat.
      const pick = (k, n) => Math.floor(((k * 7919) % SAMPLES) * (n / SAMPLES) + (n / SAMPLES) / 2) % n;

      const deep = await deepCursor(p, reader, size);
      const [search, byId, first, deepPage] = await sample(
        [
          {
            url: (k) => `${p.url}/v1/phi/Patient?family=${familyOf(pick(k, families) * PER_FAMILY)}`,
            check: (b, k) => {
              const want = familyOf(pick(k, families) * PER_FAMILY);
              if (b.entry?.length !== PER_FAMILY || !b.entry.every((e) => e.resource.name[0].family === want)) {
                throw new Error(`family search returned ${b.entry?.length} entries, not the ${PER_FAMILY} seeded`);
              }
            },
          },
          {
            url: (k) => `${p.url}/v1/phi/Patient?identifier=${encodeURIComponent(`urn:example:growth|${identifierOf(pick(k, size))}`)}`,
            check: (b, k) => {
              if (b.entry?.length !== 1 || b.entry[0].resource.identifier[0].value !== identifierOf(pick(k, size))) {
                throw new Error(`identifier search returned ${b.entry?.length} entries, not the one seeded`);
              }
            },
          },
          {
            url: () => `${p.url}/v1/phi/Patient?_count=${PAGE}`,
            check: (b) => {
              if (b.entry?.length !== PAGE) throw new Error(`first page had ${b.entry?.length}`);
            },
          },
          {
            url: () => deep.url,
            check: (b) => {
              if (b.entry?.length !== Math.min(PAGE, size - deep.position)) throw new Error(`deep page had ${b.entry?.length}`);
            },
          },
        ],
        reader,
      );
      // The accounting of disclosures of one patient (GET /v1/phi/audit?patient=), for patients spread over the set:
      // the first page of the unfiltered search, in id order (random UUIDs).
      const firstPage = await (await fetchOnceMore(`${p.url}/v1/phi/Patient?_count=${PAGE}`, { headers: await reader() })).json();
      const ids = firstPage.entry.map((e) => e.resource.id);
      const [byPatient] = await sample(
        [
          {
            url: (k) => `${p.url}/v1/phi/audit?patient=${ids[k % ids.length]}&limit=${PAGE}`,
            check: (b, k) => {
              const id = ids[k % ids.length];
              if (!b.data?.length || !b.data.every((r) => r.patient_ids.split(",").includes(id))) throw new Error(`audit by patient: ${b.data?.length} records`);
            },
          },
        ],
        auditor,
      );

      const runs = [];
      for (let k = 0; k < VERIFY_RUNS; k++) {
        const headers = await auditor();
        // The whole chain, walked in segments (each request checks at most 100,000 records) until complete.
        const t0 = performance.now();
        let records = 0;
        for (let after = 0; ; ) {
          const r = await fetchOnceMore(`${p.url}/v1/phi/audit/verify?after=${after}`, { headers });
          const body = await r.json();
          if (r.status !== 200 || body.ok !== true) throw new Error(`verify ${r.status} ${JSON.stringify(body).slice(0, 200)}`);
          records += body.records;
          if (body.complete) break;
          after = body.next_after;
        }
        const ms = performance.now() - t0;
        if (records < size) throw new Error(`verify checked ${records} records, fewer than ${size}`);
        runs.push({ ms, records });
      }
      runs.sort((a, b) => a.ms - b.ms);
      const verify = runs[Math.floor(runs.length / 2)];
      const row = {
        size,
        search,
        byId,
        first,
        deep: { ...deepPage, position: deep.position, walkedPages: deep.pages, walkSeconds: deep.walkSeconds },
        byPatient,
        verify: { ms: verify.ms, records: verify.records, perSecond: verify.records / (verify.ms / 1000) },
      };
      table.push(row);
      const f = (m) => `p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms`;
      record({ scenario, what: `search family= (${PER_FAMILY} hits)`, value: search.p50, unit: "ms p50", note: f(search) });
      record({ scenario, what: "search identifier= (1 hit)", value: byId.p50, unit: "ms p50", note: f(byId) });
      record({ scenario, what: `first page (_count=${PAGE})`, value: first.p50, unit: "ms p50", note: f(first) });
      record({ scenario, what: `deep page (at ${deep.position})`, value: deepPage.p50, unit: "ms p50", note: `${f(deepPage)}; reached by ${deep.pages} next links in ${deep.walkSeconds.toFixed(1)} s` });
      record({ scenario, what: `audit by patient (limit=${PAGE})`, value: byPatient.p50, unit: "ms p50", note: f(byPatient) });
      record({ scenario, what: "audit verify", value: verify.ms, unit: "ms", note: `${verify.records} records, ${row.verify.perSecond.toFixed(0)} records/s (median of ${VERIFY_RUNS})` });
    }
    plans = await queryPlans(p);
  } catch (err) {
    console.error(`runtime output before the failure:\n${p.runtimeTail()}`);
    throw err;
  } finally {
    await p.dispose();
  }
  const verdicts = judge(table);
  for (const v of verdicts) record({ scenario: "growth: verdict", what: v.what, value: v.ratio, unit: "x", note: v.verdict });
  return { table, seeding, plans, verdicts, networkRetries };
}

/** Flat: the top size's p50 within 1.5x of the smallest's. Linear: time grows no faster than records (within 2x). */
function judge(table) {
  if (table.length < 2) return [];
  const lo = table[0];
  const hi = table.at(-1);
  const flat = (what, a, b) => {
    const ratio = b / a;
    return { what: `${what} p50 ${hi.size}/${lo.size}`, ratio, verdict: ratio <= 1.5 ? "flat" : "GROWS" };
  };
  const prev = table.at(-2);
  // Records per second between the two largest sizes: the per-record cost without the fixed cost of a request.
  const marginal = (hi.verify.records - prev.verify.records) / ((hi.verify.ms - prev.verify.ms) / 1000);
  const timeRatio = hi.verify.ms / lo.verify.ms;
  const recordRatio = hi.verify.records / lo.verify.records;
  const lin = timeRatio / recordRatio;
  return [
    flat("search family=", lo.search.p50, hi.search.p50),
    flat("search identifier=", lo.byId.p50, hi.byId.p50),
    flat("first page", lo.first.p50, hi.first.p50),
    flat("deep page", lo.deep.p50, hi.deep.p50),
    flat("audit by patient", lo.byPatient.p50, hi.byPatient.p50),
    {
      what: `verify time ${hi.size}/${lo.size} ÷ records ratio (${recordRatio.toFixed(1)}x records)`,
      ratio: lin,
      verdict: lin <= 2 ? `linear (or better): ${timeRatio.toFixed(1)}x time for ${recordRatio.toFixed(1)}x records` : "WORSE than linear",
    },
    {
      what: `verify rate between ${prev.size} and ${hi.size} patients (records/s)`,
      ratio: marginal,
      verdict: `the marginal rate: about ${(1_000_000 / marginal).toFixed(0)} s per million records`,
    },
  ];
}

function markdown(stamp, machine, out, totalSeconds) {
  const ms = (x) => x.toFixed(1);
  const lines = [
    `# growth ${stamp}`,
    "",
    `Machine: ${machine}. Shared and noisy: read the ratios, not the absolute figures.`,
    "",
    `Built bundles on Miniflare, through the gateway with real tokens. ${SAMPLES} sequential requests per query and size; ` +
      `search by family returns ${PER_FAMILY} patients, by identifier 1; pages hold ${PAGE} patients, the deep page starts at ${DEEP * 100}% of the set ` +
      `(reached by following next links, its sealed cursor then replayed). Audit by patient: GET /v1/phi/audit?patient= for the patients of the first page, in turn. Verify: GET /v1/phi/audit/verify walked in segments until complete (shared/audit/verify.ts verifyChain over phi_audit), median of ${VERIFY_RUNS}; ` +
      "the chain holds one record per creation plus one per request measured before it.",
    "",
    "| patients | search family= p50 / p99 ms | search identifier= p50 / p99 ms | first page p50 ms | deep page p50 ms | audit by patient p50 ms | verify ms | audit records | verify records/s |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...out.table.map(
      (r) =>
        `| ${r.size} | ${ms(r.search.p50)} / ${ms(r.search.p99)} | ${ms(r.byId.p50)} / ${ms(r.byId.p99)} | ${ms(r.first.p50)} | ${ms(r.deep.p50)} (at ${r.deep.position}) | ${ms(r.byPatient.p50)} | ${r.verify.ms.toFixed(0)} | ${r.verify.records} | ${r.verify.perSecond.toFixed(0)} |`,
    ),
    "",
    "| verdict | ratio | |",
    "| --- | ---: | --- |",
    ...out.verdicts.map((v) => `| ${v.what} | ${v.ratio.toFixed(2)} | ${v.verdict} |`),
    "",
    "Seeding: `api` = POST /v1/phi/Patient through the gateway (each creation seals, indexes and appends an audit record); " +
      "`direct` = the same rows made in Node by phi's own code and written straight into its D1 (see bench/growth.mjs); " +
      "every search and the verify above then checked them through the API.",
    "",
    ...out.seeding.map(
      (s) =>
        `- ${s.from} → ${s.to} (${s.how}): ${s.seconds.toFixed(1)} s, ${s.perSecond.toFixed(0)} patients/s` +
        (s.how === "api"
          ? ` (${CONCURRENCY} in flight; 100,000 this way would take ~${(100_000 / s.perSecond / 60).toFixed(0)} min)`
          : ` (${s.writeSeconds.toFixed(1)} s of it writing to D1, the rest making the rows in Node)`),
    ),
    "",
    "Query plans (EXPLAIN QUERY PLAN on the phi D1 at the largest size):",
    "",
    "| statement | plan | reading |",
    "| --- | --- | --- |",
    ...out.plans.map((q) => `| ${q.what} | ${q.plan} | ${q.reading} |`),
    "",
    `Total ${totalSeconds.toFixed(0)} s; requests tried again after a connection error: ${out.networkRetries}.`,
    "",
  ];
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const started = Date.now();
  const rows = [];
  const record = (r) => {
    rows.push(r);
    console.log(`  ${r.scenario.padEnd(36)} ${r.what.padEnd(40)} ${typeof r.value === "number" ? r.value.toFixed(2) : r.value} ${r.unit}${r.note ? `  (${r.note})` : ""}`);
  };
  console.log(`growth at ${SIZES.join(", ")} patients on ${os.cpus().length} cores, node ${process.version}`);
  const out = await growth(record);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = path.join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`;
  const totalSeconds = (Date.now() - started) / 1000;
  writeFileSync(path.join(dir, `growth-${stamp}.json`), JSON.stringify({ machine, sizes: SIZES, rows, ...out }, null, 2));
  const md = markdown(stamp, machine, out, totalSeconds);
  writeFileSync(path.join(dir, `growth-${stamp}.md`), md);
  console.log(`\n${md}\nwritten bench/results/growth-${stamp}.md`);
}
