// Bench plumbing: Miniflare instances from built bundles, the platform (five workers, real gateway),
// twins bundled with esbuild, load with autocannon, CPU of the runtime (or of a baseline process).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { buildWorker } from "../scripts/build.mjs";
import { ensureDevSecrets, parseDotenv } from "../scripts/dev-secrets.mjs";
import { databasesOf, ROOT, WORKERS } from "../scripts/workers.mjs";

export const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

function processTable() {
  const table = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(d), { ppid: Number(fields[1]), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      /* gone */
    }
  }
  return table;
}

/** Every workerd process below this Node process (Miniflare spawns them). */
function runtimePids() {
  const pids = [];
  const table = processTable();
  for (const [pid, { comm }] of table) {
    if (!comm.startsWith("workerd")) continue;
    let p = pid;
    while (p > 1) {
      p = table.get(p)?.ppid ?? 0;
      if (p === process.pid) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
}

/** CPU seconds (user + system) used so far by the given processes. */
export function cpuSecondsOf(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      /* exited */
    }
  }
  return ticks / CLK_TCK;
}

/** CPU seconds (user + system) used so far by the runtime processes. */
export function runtimeCpuSeconds() {
  return cpuSecondsOf(runtimePids());
}

const LOG_RANKS = { trace: 0, debug: 1, log: 2, info: 2, warn: 3, error: 4 };
const RUNTIME_LOG_LEVEL = process.env.BENCH_RUNTIME_LOGS ? (LOG_RANKS[process.env.BENCH_RUNTIME_LOGS] ?? LOG_RANKS.warn) : -1;

/**
 * Starts Miniflare on 127.0.0.1 with `workers`. `persist` (a directory) keeps D1 and Durable Object
 * state across restarts, so a second instance (e.g. with telemetry on) sees the same data.
 */
export async function startMiniflare(workers, persist = mkdtempSync(path.join(os.tmpdir(), "bench-")), inspectorPort = undefined) {
  // Miniflare 5 takes its own option shape; ours (and wrangler's) are the v4 one it converts.
  const mf = new Miniflare(convertV4MiniflareOptions({
    workers,
    ...(inspectorPort === undefined ? {} : { inspectorPort }),
    host: "127.0.0.1",
    port: 0,
    // Miniflare 5 keeps every resource (D1, Durable Objects) under one persistence path.
    resourcePersistencePath: persist,
    // Workers' own log lines are part of their cost (workerd formats and writes them); drop them here rather than
    // print. Miniflare 5 hands each line to this handler (its v4 `handleRuntimeStdio` is no longer passed on: the
    // lines went to this process's stdout, competing with the load generator). BENCH_RUNTIME_LOGS=warn (or info,
    // debug) prints the lines at that level and above to stderr, for looking into a failure, not for measuring.
    handleStructuredLogs: RUNTIME_LOG_LEVEL < 0 ? () => {} : (log) => {
      if ((LOG_RANKS[log.level] ?? LOG_RANKS.info) >= RUNTIME_LOG_LEVEL) process.stderr.write(`[runtime ${log.level} ${new Date(log.timestamp).toISOString()}] ${log.message}\n`);
    },
  }));
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, ""), persist };
}

/** Applies drizzle-kit migrations (`--> statement-breakpoint` separated) to a D1 binding. */
export async function migrate(db, dir) {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".sql")).sort()) {
    for (const stmt of readFileSync(path.join(dir, f), "utf8").split("--> statement-breakpoint")) {
      // A part holding only comments (a hand edit's note) is no statement.
      if (stmt.replace(/^\s*--.*$/gm, "").trim()) await db.prepare(stmt).run();
    }
  }
}

/** The local secrets of every worker (generated when missing), by worker name. */
export function devVars() {
  const root = ensureDevSecrets({ quiet: true });
  const read = (rel) => parseDotenv(readFileSync(path.join(ROOT, rel), "utf8"));
  return { auth: root, phi: read("workers/phi/.dev.vars"), payments: read("workers/payments/.dev.vars") };
}

const builtWorkers = new Map();
/** Production bundles of the five workers (built once per process; minified unless profiling), as Miniflare worker options. */
function platformWorkers(minify = true) {
  if (!builtWorkers.has(minify)) {
    const outRoot = path.join(ROOT, ".tmp", minify ? "bench-build" : "bench-build-plain");
    const ordered = [...WORKERS].sort((a, b) => (a.name === "auth" ? -1 : b.name === "auth" ? 1 : 0));
    builtWorkers.set(minify, ordered.map((w) => {
      const { outdir } = buildWorker(w.name, { outRoot, minify });
      // Module rules are for sources; Miniflare 5 refuses them on a pre-built bundle.
      // Static assets (auth's Swagger UI files, run_worker_first) are left out: locally Miniflare puts its asset
      // router, a JS worker of its own, in front of every request of a worker that has them (+0.25 ms CPU per request
      // in this runtime, measured 2026-12-01); on Cloudflare that routing happens before the Worker and is not its CPU,
      // and the twins have none. The bench never requests /docs/assets/.
      const { workerOptions: { modulesRules: _rules, assets: _assets, ...workerOptions } } = unstable_getMiniflareWorkerOptions(path.join(ROOT, w.config));
      return { ...workerOptions, name: w.name, modules: true, scriptPath: path.join(outdir, "index.js"), modulesRoot: outdir };
    }));
  }
  return builtWorkers.get(minify);
}

/** One of our workers' Miniflare options (its production bundle, bindings and databases). */
export function workerOptionsOf(name) {
  return platformWorkers().find((x) => x.name === name);
}

/** The D1 binding option of one of our workers, so a twin can share its database (same id = same data). */
export function d1Of(name) {
  const w = platformWorkers().find((x) => x.name === name);
  return w.d1Databases;
}

/**
 * The whole platform on Miniflare: the five workers from their minified production bundles, the
 * gateway first (it receives Miniflare's HTTP entry), migrated D1. Returns `{ mf, url, token(scope, auth?) }`
 * and, for the bench, `persist`, `vars` (dev secrets) and `dispose()`.
 * Options: `vars` are added to every worker's bindings (e.g. OTEL_EXPORTER_OTLP_ENDPOINT); `extra` are more
 * Miniflare workers in the same runtime (twins, reached through their `routes`); `persist` reuses state;
 * `minify: false` and `inspectorPort` are for CPU profiling (bench/profile.mjs).
 */
export async function platform({ vars = {}, extra = [], persist, minify = true, inspectorPort } = {}) {
  const secrets = ensureDevSecrets({ quiet: true });
  const workers = platformWorkers(minify).map((w) => ({ ...w, bindings: { ...w.bindings, ...vars } }));
  const fresh = persist === undefined;
  const { mf, url, persist: dir } = await startMiniflare([...workers, ...extra], persist, inspectorPort);
  if (fresh) for (const w of WORKERS) for (const [binding, , dir] of databasesOf(w)) await migrate(await mf.getD1Database(binding, w.name), dir);
  const basic = `Basic ${Buffer.from(`${secrets.BOOTSTRAP_CLIENT_ID}:${secrets.BOOTSTRAP_CLIENT_SECRET}`).toString("base64")}`;
  const token = async (scope, auth = basic) => {
    const r = await fetch(`${url}/oauth/token`, { method: "POST", headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "client_credentials", scope }) });
    if (r.status !== 200) throw new Error(`token ${r.status} ${await r.text()}`);
    return (await r.json()).access_token;
  };
  return { mf, url, token, persist: dir, vars: secrets, dispose: () => mf.dispose() };
}

/**
 * Bundles a twin (plain JS that may import npm packages such as jose) into one ES module for workerd.
 * `source`: the module's text instead of the file `bench/twins/<entry>` (bench/edge.mjs bundles the shared app
 * that way); imports the runtime provides (`node:*`, `cloudflare:*`) stay imports.
 */
export async function bundleTwin(entry, source) {
  const outdir = path.join(ROOT, ".tmp", "bench-twins");
  mkdirSync(outdir, { recursive: true });
  const outfile = path.join(outdir, path.basename(entry));
  await build({
    ...(source === undefined
      ? { entryPoints: [path.join(ROOT, "bench", "twins", entry)] }
      : { stdin: { contents: source, resolveDir: ROOT, sourcefile: entry, loader: "js" } }),
    outfile,
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    target: "es2022",
    external: ["node:*", "cloudflare:*"],
    // Twins that do what the platform's contract asks of every request use our own code for it. A bare specifier,
    // so the Node-side type check (which cannot type shared/*.ts without the Workers types) does not follow it.
    alias: { "@platform/shared": path.join(ROOT, "shared") },
    logLevel: "warning",
  });
  return outfile;
}

/**
 * One worker per mode from one bundle in one runtime (its MODE binding picks the behaviour, the mode's own
 * bindings added), each serving `GET /<mode>/ok`, measured in turns (2 rounds, 1 s warm-up, `seconds` measured):
 * prints each mode's best CPU per request and its excess over the first mode (the baseline).
 */
export async function compareModes(outfile, modes, { name, seconds = Number(process.env.BENCH_SECONDS ?? 4) }) {
  const { mf, url } = await startMiniflare(
    modes.map(([key, , vars]) => ({
      name: `${name}-${key}`,
      compatibilityDate: "2026-08-15",
      compatibilityFlags: ["nodejs_compat"],
      modules: true,
      scriptPath: outfile,
      bindings: { MODE: key, ...vars },
      routes: [`*/${key}/*`],
    })),
  );
  try {
    const sums = Object.fromEntries(modes.map(([key]) => [key, []]));
    for (let round = 0; round < 2; round++) {
      for (const [key] of modes) {
        await measure({ url: `${url}/${key}/ok`, duration: 1, connections: 32 });
        sums[key].push((await measure({ url: `${url}/${key}/ok`, duration: seconds, connections: 32 })).cpuMsPerReq);
      }
    }
    const [baseKey, baseLabel] = modes[0];
    const base = Math.min(...sums[baseKey]);
    const width = Math.max(...modes.map(([, label]) => label.length)) + 2;
    for (const [key, label] of modes) {
      const best = Math.min(...sums[key]);
      console.log(`${label.padEnd(width)} ${best.toFixed(3)} ms CPU/req (best of 2), +${(best - base).toFixed(3)} over the ${baseLabel}`);
    }
  } finally {
    await mf.dispose();
  }
}

/** Runs autocannon and the CPU meter around it. `cpu` measures another process (a Node baseline). */
export async function measure({ cpu = runtimeCpuSeconds, settleMs = 0, ...opts }) {
  const cpu0 = cpu();
  const socketErrors = {};
  const result = await new Promise((resolve, reject) => {
    const run = autocannon({ connections: 32, duration: 10, ...opts }, (err, r) => (err ? reject(err) : resolve(r)));
    // Socket errors by code (ECONNRESET, ...): timeouts are counted by autocannon itself.
    run.on("reqError", (e) => {
      if (e?.message === "request timed out") return;
      const k = e?.code ?? e?.message ?? "socket";
      socketErrors[k] = (socketErrors[k] ?? 0) + 1;
    });
  });
  // Work the requests left for later (the audit sealer's runs, up to a second after its last nudge) is theirs:
  // the CPU is read after it, so it is not charged to whatever the runtime serves next.
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  const used = cpu() - cpu0;
  const total = result.requests.total;
  return {
    rps: total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    // What the errors were: answers by status (non-2xx only), timeouts and socket errors.
    failures: { ...failuresOf(result), ...socketErrors },
    requests: total,
    seconds: result.duration,
    cpuSeconds: used,
    cpuMsPerReq: total > 0 ? (used * 1000) / total : NaN,
  };
}

function failuresOf(result) {
  const out = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) if (!code.startsWith("2") && count > 0) out[code] = count;
  if (result.timeouts > 0) out.timeouts = result.timeouts;
  return out;
}

/** The errors of a measurement as text: `0`, or `16 (503: 12, timeouts: 4)`. */
export function errorsText(m) {
  const parts = Object.entries(m.failures ?? {}).map(([k, n]) => `${k}: ${n}`);
  return parts.length > 0 ? `${m.errors} (${parts.join(", ")})` : String(m.errors);
}

/** Several measurements of one implementation as one: totals summed, p50 the median of the slices', p99 the worst. */
export function combine(parts) {
  const requests = parts.reduce((a, m) => a + m.requests, 0);
  const seconds = parts.reduce((a, m) => a + m.seconds, 0);
  const cpuSeconds = parts.reduce((a, m) => a + m.cpuSeconds, 0);
  const p50s = parts.map((m) => m.p50).sort((a, b) => a - b);
  return {
    rps: requests / seconds,
    p50: p50s[Math.floor((p50s.length - 1) / 2)],
    p99: Math.max(...parts.map((m) => m.p99)),
    errors: parts.reduce((a, m) => a + m.errors, 0),
    failures: parts.reduce((a, m) => {
      for (const [k, n] of Object.entries(m.failures ?? {})) a[k] = (a[k] ?? 0) + n;
      return a;
    }, {}),
    requests,
    seconds,
    cpuSeconds,
    cpuMsPerReq: requests > 0 ? (cpuSeconds * 1000) / requests : NaN,
  };
}

/** Starts a Node script as a child process and waits for the `listening <port>` line it prints. */
export function startChild(script, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    const onData = (d) => {
      buf += d.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) {
        child.stdout.off("data", onData);
        child.stdout.resume();
        resolve({ child, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}`, cpu: () => cpuSecondsOf([child.pid]), stop: () => child.kill("SIGTERM") });
      }
    };
    child.stdout.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${script} exited with ${code}`)));
    child.once("error", reject);
  });
}
