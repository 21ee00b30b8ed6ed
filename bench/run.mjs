#!/usr/bin/env node
// `npm run bench`: the built workers (wrangler deploy --dry-run bundles) on Miniflare, on 127.0.0.1, through the
// real gateway with real tokens; each figure beside a baseline measured in the same run. Bounded in time.
// Writes bench/results/<date>.md and .json. Quote ratios, not absolute numbers: this machine is shared and noisy.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import WebSocket from "ws";
import { buildWorker } from "../scripts/build.mjs";
import { ensureDevSecrets } from "../scripts/dev-secrets.mjs";
import { ROOT, WORKERS } from "../scripts/workers.mjs";
import { plainFakerPatientsPerSecond } from "./baselines/plain-faker.mjs";
import { measure, migrate, startMiniflare } from "./lib.mjs";

const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const rows = [];
const record = (r) => {
  rows.push(r);
  console.log(`  ${r.scenario.padEnd(44)} ${r.what.padEnd(30)} ${typeof r.value === "number" ? r.value.toFixed(1) : r.value} ${r.unit}${r.note ? `  (${r.note})` : ""}`);
};

async function platform() {
  const vars = ensureDevSecrets({ quiet: true });
  const outRoot = path.join(ROOT, ".tmp", "bench-build");
  const ordered = [...WORKERS].sort((a, b) => (a.name === "auth" ? -1 : b.name === "auth" ? 1 : 0));
  const workers = ordered.map((w) => {
    const { outdir } = buildWorker(w.name, { outRoot, minify: true });
    const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, w.config));
    return { ...workerOptions, name: w.name, modules: true, scriptPath: path.join(outdir, "index.js"), modulesRoot: outdir };
  });
  const { mf, url } = await startMiniflare(workers);
  for (const w of WORKERS) if (w.db) await migrate(await mf.getD1Database("DB", w.name), path.join(ROOT, "migrations", w.db));
  const basic = `Basic ${Buffer.from(`${vars.BOOTSTRAP_CLIENT_ID}:${vars.BOOTSTRAP_CLIENT_SECRET}`).toString("base64")}`;
  const token = async (scope, auth = basic) => {
    const r = await fetch(`${url}/oauth/token`, { method: "POST", headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "client_credentials", scope }) });
    if (r.status !== 200) throw new Error(`token ${r.status} ${await r.text()}`);
    return (await r.json()).access_token;
  };
  return { mf, url, token };
}

async function hello() {
  const { mf, url } = await startMiniflare([{ name: "hello", modules: true, scriptPath: path.join(ROOT, "bench/twins/hello.js"), compatibilityDate: "2026-04-26" }]);
  const m = await measure({ url, duration: DURATION });
  record({ scenario: "hello world (runtime ceiling)", what: "req/s", value: m.rps, unit: "req/s", note: `p50 ${m.p50} ms, p99 ${m.p99} ms, ${m.cpuMsPerReq.toFixed(3)} ms CPU/req, errors ${m.errors}` });
  await mf.dispose();
  return m;
}

async function synthetic(p) {
  const tok = await p.token("synthetic:generate");
  const count = Number(process.env.BENCH_PATIENTS ?? 5000);
  for (const withVitals of [true, false]) {
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const res = await fetch(`${p.url}/v1/synthetic/patients?count=${count}&seed=bench${i}&format=ndjson${withVitals ? "" : "&observations=false"}`, { headers: { authorization: `Bearer ${tok}` } });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`synthetic ${res.status} ${text.slice(0, 200)}`);
      const patients = text.split("\n").filter((l) => l.startsWith('{"resourceType":"Patient"')).length;
      runs.push(patients / ((performance.now() - t0) / 1000));
    }
    runs.sort((a, b) => a - b);
    const ours = runs[1];
    const base = [0, 1, 2].map(() => plainFakerPatientsPerSecond(count, withVitals).perSecond).sort((a, b) => a - b)[1];
    const label = withVitals ? "with vitals" : "without observations";
    record({ scenario: `synthetic NDJSON ${label} (through the gateway)`, what: "patients/s", value: ours, unit: "patients/s", note: `plain faker in Node: ${base.toFixed(0)}/s, ratio ${(ours / base).toFixed(2)}x` });
  }
}

function openSocket(url, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`ws ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

async function devices(p, sockets, perSocket, window, label) {
  const writer = await p.token("device:write");
  const ids = [];
  for (let i = 0; i < sockets; i++) {
    const r = await fetch(`${p.url}/v1/devices`, { method: "POST", headers: { authorization: `Bearer ${writer}`, "content-type": "application/json" }, body: JSON.stringify({ udi: `(01)0${Date.now()}${i}`, model: "bench", manufacturer: "Bench", serial: `B-${label}-${i}-${Date.now()}`, type: "bedside_monitor" }) });
    const body = await r.json();
    if (r.status !== 201) throw new Error(`register ${r.status} ${JSON.stringify(body)}`);
    const tok = await p.token("device:connect", `Basic ${Buffer.from(`${body.credentials.client_id}:${body.credentials.client_secret}`).toString("base64")}`);
    ids.push({ id: body.id, tok });
  }
  const wsBase = p.url.replace(/^http/, "ws");
  const conns = await Promise.all(ids.map(({ id, tok }) => openSocket(`${wsBase}/v1/devices/${id}/session`, tok)));
  const latencies = [];
  const t0 = performance.now();
  await Promise.all(
    conns.map(
      (ws) =>
        new Promise((resolve) => {
          const sent = new Map();
          let acked = 0;
          ws.on("message", (data) => {
            const m = JSON.parse(data.toString());
            if (typeof m.ack === "number" && sent.has(m.ack)) {
              latencies.push(performance.now() - sent.get(m.ack));
              sent.delete(m.ack);
              if (++acked === perSocket) resolve();
            }
          });
          // Closed loop: at most `window` readings in flight per socket, the next sent on each ack.
          let next = 1;
          const sendNext = () => {
            if (next > perSocket) return;
            const s = next++;
            sent.set(s, performance.now());
            ws.send(JSON.stringify({ seq: s, code: "150456", value: 97, unit: "%", device_time: new Date().toISOString() }));
          };
          ws.on("message", () => sendNext());
          for (let k = 0; k < window; k++) sendNext();
        }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const ws of conns) ws.close();
  latencies.sort((a, b) => a - b);
  const q = (f) => latencies[Math.min(latencies.length - 1, Math.floor(f * latencies.length))];
  record({ scenario: `device readings, ${label}`, what: "readings/s", value: latencies.length / seconds, unit: "readings/s", note: `ack p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms, ${latencies.length} acked` });
}

const started = Date.now();
console.log(`bench on ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? "?"}, node ${process.version}`);
await hello();
const p = await platform();
try {
  await synthetic(p);
  await devices(p, 1, 2000, 8, "1 socket x 2000, 8 in flight (one object)");
  await devices(p, 200, 100, 1, "200 sockets x 100, 1 in flight each");
} finally {
  await p.mf.dispose();
}
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const dir = path.join(ROOT, "bench", "results");
mkdirSync(dir, { recursive: true });
const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`;
writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify({ machine, rows }, null, 2));
writeFileSync(
  path.join(dir, `${stamp}.md`),
  `# bench ${stamp}\n\nMachine: ${machine}\n\n| scenario | measure | value | notes |\n| --- | --- | ---: | --- |\n${rows.map((r) => `| ${r.scenario} | ${r.what} | ${typeof r.value === "number" ? r.value.toFixed(1) : r.value} | ${r.note ?? ""} |`).join("\n")}\n`,
);
console.log(`\nwritten bench/results/${stamp}.md in ${((Date.now() - started) / 1000).toFixed(0)} s`);
