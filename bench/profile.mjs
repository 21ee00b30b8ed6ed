#!/usr/bin/env node
// CPU profile of the authenticated Patient read (`node bench/profile.mjs`; PROFILE_SCENARIO=payment: a payment
// creation, the gateway and payments; PROFILE_SCENARIO=token: token issuance): the platform from unminified
// production bundles on Miniflare with the V8 inspector on, the gateway (auth) and phi sampled while
// autocannon reads one Patient, self time summed by source module (the bundles' `// path` comments).
// Prints the top modules and functions per worker; used for "what costs what" in the bench results.
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import WebSocket from "ws";
import { ROOT } from "../scripts/workers.mjs";
import { measure, platform } from "./lib.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
// PROFILE_TELEMETRY=on: every worker exports to an OTLP sink on 127.0.0.1 (what the export costs, by function).
const TELEMETRY = process.env.PROFILE_TELEMETRY === "on";

/** An OTLP/HTTP sink that reads and drops what it is sent. */
function startSink() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Line number -> source module, from esbuild's `// node_modules/x/y.js` / `// workers/...` markers. */
function moduleMap(file) {
  const marks = [];
  readFileSync(file, "utf8")
    .split("\n")
    .forEach((line, i) => {
      const m = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(line);
      if (m) marks.push([i, m[1].replace(/^(\.\.\/)+/, "").replace(/^[^/]+\/node_modules\//, "node_modules/")]);
    });
  return (line) => {
    let lo = 0;
    let hi = marks.length - 1;
    let found = "(bundle prelude)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid][0] <= line) {
        found = marks[mid][1];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

function group(mod) {
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(mod);
  if (m) return m[1];
  return mod;
}

function connect(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const waiting = new Map();
  ws.on("message", (d) => {
    const m = JSON.parse(d.toString());
    if (m.id && waiting.has(m.id)) {
      waiting.get(m.id)(m.result);
      waiting.delete(m.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      waiting.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve({ send, close: () => ws.close() }));
    ws.once("error", reject);
  });
}

function summarize(name, profile, bundle) {
  const where = moduleMap(bundle);
  const selfSamples = new Map();
  for (const s of profile.samples) selfSamples.set(s, (selfSamples.get(s) ?? 0) + 1);
  const total = profile.samples.length;
  const byModule = new Map();
  const byFunction = new Map();
  for (const node of profile.nodes) {
    const n = selfSamples.get(node.id) ?? 0;
    if (!n) continue;
    const cf = node.callFrame;
    const mod = cf.url.endsWith("index.js") ? group(where(cf.lineNumber)) : cf.url || cf.functionName || "(native)";
    byModule.set(mod, (byModule.get(mod) ?? 0) + n);
    const fn = `${cf.functionName || "(anonymous)"} [${mod}${process.env.PROFILE_LINES ? `:${cf.lineNumber + 1}` : ""}]`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + n);
  }
  const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([x, n]) => `    ${((100 * n) / total).toFixed(1).padStart(5)} %  ${x}`).join("\n");
  return `${name}: ${total} samples\n  by module:\n${top(byModule, Number(process.env.PROFILE_TOP ?? 14))}\n  by function:\n${top(byFunction, Number(process.env.PROFILE_TOP ?? 12))}`;
}

/** The Patient read: one Patient created, then read again and again. */
async function patientRead(p) {
  const tok = await p.token("phi:read phi:write");
  const created = await fetch(`${p.url}/v1/phi/Patient`, {
    method: "POST",
    headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" },
    body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Profile", given: ["Ada"] }], gender: "female", birthDate: "1970-01-02" }),
  });
  const { id } = await created.json();
  return { label: "Patient read", worker: "phi", opts: { url: `${p.url}/v1/phi/Patient/${id}`, headers: { authorization: `Bearer ${tok}` } } };
}

/** Payment creation as the bench does it: inline card, automatic capture, a fresh Idempotency-Key per request. */
async function paymentCreation(p) {
  const tok = await p.token("payment:write");
  const run = Date.now().toString(36);
  let n = 0;
  const body = JSON.stringify({ amount: 1250, currency: "USD", card: { number: "4242424242424242", exp_month: 12, exp_year: new Date().getUTCFullYear() + 3, cvc: "123" } });
  const requests = [
    {
      method: "POST",
      path: "/v1/payments",
      headers: { authorization: `Bearer ${tok}`, "content-type": "application/json" },
      body,
      setupRequest: (req) => ({ ...req, headers: { ...req.headers, "idempotency-key": `profile-${run}-${++n}` } }),
    },
  ];
  return { label: "Payment creation", worker: "payments", opts: { url: p.url, requests } };
}

/** Token issuance for a registered client (client_credentials, client_secret_basic), as the bench's: auth alone. */
async function tokenIssuance(p) {
  const admin = await p.token("admin");
  const r = await fetch(`${p.url}/admin/clients`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "profile", roles: [], scopes: ["phi:read"] }),
  });
  const client = await r.json();
  if (r.status !== 201) throw new Error(`register profile client ${r.status} ${JSON.stringify(client)}`);
  const authorization = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64")}`;
  const body = new URLSearchParams({ grant_type: "client_credentials", scope: "phi:read" }).toString();
  return { label: "Token issuance", worker: "auth", opts: { url: `${p.url}/oauth/token`, method: "POST", headers: { authorization, "content-type": "application/x-www-form-urlencoded" }, body } };
}

const SCENARIOS = { patient: patientRead, payment: paymentCreation, token: tokenIssuance };

/**
 * Profiles one scenario (PROFILE_SCENARIO=patient, the default, payment or token) for `seconds` and returns the summary
 * text (the gateway and the worker behind it, by module and function).
 */
export async function profilePatientRead(seconds = SECONDS, scenario = process.env.PROFILE_SCENARIO ?? "patient") {
  const out = [];
  const port = await freePort();
  const sink = TELEMETRY ? await startSink() : null;
  const vars = sink ? { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.address().port}` } : {};
  const p = await platform({ minify: false, inspectorPort: port, vars });
  try {
    const setup = SCENARIOS[scenario];
    if (!setup) throw new Error(`PROFILE_SCENARIO: one of ${Object.keys(SCENARIOS).join(", ")}`);
    const { label, worker, opts } = await setup(p);
    await measure({ ...opts, duration: 2 });
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const sessions = [];
    for (const name of new Set(["auth", worker])) {
      const t = targets.find((x) => x.id?.endsWith(`:${name}`) || x.title?.endsWith(`:${name}`));
      if (!t) throw new Error(`no inspector target for ${name}: ${targets.map((x) => x.id).join(", ")}`);
      const s = await connect(t.webSocketDebuggerUrl);
      await s.send("Profiler.enable");
      await s.send("Profiler.setSamplingInterval", { interval: 200 });
      await s.send("Profiler.start");
      sessions.push([name, s]);
    }
    const m = await measure({ ...opts, duration: seconds });
    out.push(`${label} under profiling (unminified bundles, bootstrap client, telemetry ${TELEMETRY ? "exporting to a local sink" : "off"}): ${m.rps.toFixed(1)} req/s, ${m.cpuMsPerReq.toFixed(2)} ms CPU/req (sampling adds overhead). Self time of each worker's isolate, in % of its samples; D1's own SQLite work runs outside these isolates.\n`);
    for (const [name, s] of sessions) {
      const { profile } = await s.send("Profiler.stop");
      out.push(summarize(name, profile, path.join(ROOT, ".tmp", "bench-build-plain", "local", name, "index.js")) + "\n");
      s.close();
    }
  } finally {
    await p.dispose();
    sink?.close();
  }
  return out.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await profilePatientRead());
