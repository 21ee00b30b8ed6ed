#!/usr/bin/env node
// End-to-end run: starts the whole platform with `npm run dev` (wrangler dev, local D1) on
// 127.0.0.1, drives every flow in e2e/flows/ over real HTTP and WebSocket, then stops it.
// Each flow module exports `name` and a default `async (ctx) => void`.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import assert from "node:assert/strict";
import { ensureDevSecrets, SECRETS } from "../scripts/dev-secrets.mjs";
import { ROOT } from "../scripts/workers.mjs";
import { startReceiver } from "./otlp-receiver.mjs";

/**
 * Points every worker at the run's OTLP receiver by appending to its .dev.vars
 * (wrangler dev reads one per worker); returns a function that restores them.
 * LOG_LEVEL=debug: the workers behind the gateway write their own access lines too
 * (the telemetry flow checks that each worker's lines reach /v1/logs).
 */
function pointTelemetryAt(url) {
  const saved = [];
  for (const file of Object.keys(SECRETS)) {
    const full = path.join(ROOT, file);
    const before = existsSync(full) ? readFileSync(full, "utf8") : "";
    saved.push([full, before]);
    const kept = before.split("\n").filter((l) => !/^(OTEL_EXPORTER_OTLP_ENDPOINT|OTEL_METRIC_EXPORT_INTERVAL|LOG_LEVEL)=/.test(l)).join("\n");
    writeFileSync(full, `${kept.replace(/\n*$/, "\n")}OTEL_EXPORTER_OTLP_ENDPOINT='${url}'\nOTEL_METRIC_EXPORT_INTERVAL='1000'\nLOG_LEVEL='debug'\n`, { mode: 0o600 });
  }
  return () => {
    for (const [full, before] of saved) writeFileSync(full, before, { mode: 0o600 });
  };
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitReady(base, child, timeoutMs = 90_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`dev server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/readiness`);
      if (res.status === 200) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("dev server did not become ready in time");
}

/**
 * fetch that retries once when the server closed an idle keep-alive connection just as it was
 * reused (a race of the dev server's idle timeout, not an answer from the platform).
 */
async function fetchOnce(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    const code = err?.cause?.code;
    const replayable = !init?.body || typeof init.body === "string" || init.body instanceof URLSearchParams;
    if (replayable && (code === "UND_ERR_SOCKET" || code === "ECONNRESET")) return fetch(url, init);
    throw err;
  }
}

const NETWORK_ERRORS = new Set(["ECONNRESET", "EPIPE", "ECONNREFUSED", "UND_ERR_SOCKET", "E2E_DEV_PROXY_LOST"]);
/**
 * wrangler dev's proxy answers this 503 (Retry-After: 0) to a non-GET request when its own fetch to the
 * runtime failed: whatever the cause, its check of whether the worker restarted compares URLs with and
 * without the request's path, so the message is misleading. Not an answer from the platform: treated as
 * a network error (retried only for idempotent requests).
 */
const DEV_PROXY_LOST = "Your worker restarted mid-request.";

/**
 * A bounded keep-alive connection pool for the load flows: every request can be launched at once,
 * at most `connections` are on the wire (the rest wait in the agent's queue). `peak` is the most
 * requests that were on the wire at the same time. A request is sent again after a network error
 * only when the caller says it is idempotent (`retry: n`); a timeout is never retried.
 */
export function makePool(base, connections, { timeoutMs = 60_000, deadlineMs } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const { hostname, port } = new URL(base);
  const stats = { peak: 0, inFlight: 0, requests: 0, retries: 0, proxyLost: 0, sockets: new Set() };
  // deadlineMs bounds the pool's whole life: past it, every request still queued or on the wire fails.
  const live = new Set();
  let expired;
  const deadline =
    deadlineMs &&
    setTimeout(() => {
      expired = Object.assign(new Error(`load deadline of ${deadlineMs} ms passed`), { code: "E2E_DEADLINE" });
      for (const req of live) req.destroy(expired);
    }, deadlineMs);
  const once = (p, { method, headers, body }) =>
    new Promise((resolve, reject) => {
      if (expired) return reject(expired);
      let onWire = false;
      const off = () => {
        if (onWire) stats.inFlight--;
        onWire = false;
      };
      const req = http.request({ hostname, port, path: p, method, headers, agent, timeout: timeoutMs }, (res) => {
        live.delete(req);
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          off();
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 503 && text.startsWith(DEV_PROXY_LOST)) {
            stats.proxyLost++;
            reject(Object.assign(new Error(`wrangler dev proxy lost ${method} ${p}`), { code: "E2E_DEV_PROXY_LOST" }));
            return;
          }
          resolve({ status: res.statusCode, headers: res.headers, text });
        });
        res.on("error", (e) => (off(), reject(e)));
      });
      req.on("socket", (s) => {
        onWire = true;
        stats.requests++;
        stats.sockets.add(s);
        stats.peak = Math.max(stats.peak, ++stats.inFlight);
      });
      req.on("timeout", () => req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms: ${method} ${p}`), { code: "ETIMEDOUT" })));
      req.on("error", (e) => (off(), live.delete(req), reject(e)));
      live.add(req);
      req.end(body);
    });
  return {
    stats,
    /** JSON request: { status, headers, body, attempts }. */
    async json(p, { method = "GET", token, body, headers = {}, retry = 0 } = {}) {
      const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      const all = {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(payload !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
        ...headers,
      };
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await once(p, { method, headers: all, body: payload });
          let parsed;
          try {
            parsed = r.text ? JSON.parse(r.text) : undefined;
          } catch {
            parsed = r.text;
          }
          return { status: r.status, headers: r.headers, body: parsed, attempts: attempt };
        } catch (err) {
          const network = NETWORK_ERRORS.has(err?.code) || err?.message === "socket hang up";
          if (expired) throw expired;
          if (!network || attempt > retry) throw err;
          stats.retries++;
        }
      }
    },
    close: () => {
      clearTimeout(deadline);
      agent.destroy();
    },
  };
}

/** Every scope but `admin`: what the default tenant's e2e client holds. */
const MEMBER_SCOPES = ["phi:read", "phi:write", "payment:read", "payment:write", "payment:refund", "payment:approve", "synthetic:generate", "device:read", "device:write", "device:connect", "audit:read"];

export function makeContext(base, creds, extra = {}) {
  const tokens = new Map();
  let member;
  const ctx = {
    ...extra,
    base,
    /** The bootstrap admin client ({ id, secret }), for flows that must type it (the browser flow). */
    creds,
    assert,
    log: (...a) => console.log("   ", ...a),
    /** fetch relative to the gateway. */
    fetch: (p, init) => fetchOnce(base + p, init),
    /** JSON request helper: returns { status, headers, body }. */
    async json(p, { method = "GET", token, body, headers = {} } = {}) {
      const res = await fetchOnce(base + p, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      return { status: res.status, headers: res.headers, body: parsed };
    },
    /** A token for a client id and secret (client_credentials, HTTP Basic). */
    async clientToken(id, secret, scope) {
      const form = new URLSearchParams({ grant_type: "client_credentials" });
      if (scope) form.set("scope", scope);
      const res = await fetch(`${base}/oauth/token`, {
        method: "POST",
        headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
        body: form,
      });
      const body = await res.json();
      assert.equal(res.status, 200, `token request failed: ${JSON.stringify(body)}`);
      return body.access_token;
    },
    /**
     * A token with exactly `scope` (cached per scope string): the bootstrap admin's when it asks for `admin`
     * (a platform client: tenants, clients, keys), else that of one client of the default tenant that holds
     * every other scope. Data belongs to a tenant, and the clients flows create without a tenant_id are the
     * default tenant's: with the bootstrap admin's token (tenant ten_platform) their data would not be theirs.
     */
    async token(scope) {
      if (!tokens.has(scope)) {
        if (scope.split(" ").includes("admin")) tokens.set(scope, await ctx.clientToken(creds.id, creds.secret, scope));
        else {
          member ??= await ctx.createClient({ name: "e2e default-tenant operator", scopes: MEMBER_SCOPES });
          tokens.set(scope, await ctx.clientToken(member.client_id, member.client_secret, scope));
        }
      }
      return tokens.get(scope);
    },
    /** A bounded connection pool for concurrent requests (see makePool). */
    pool: (connections, opts) => makePool(base, connections, opts),
    /** Creates a client through the admin API: { client_id, client_secret, ... }. */
    async createClient({ name, roles = [], scopes = [] }) {
      const r = await ctx.json("/admin/clients", { method: "POST", token: await ctx.token("admin"), body: { name, roles, scopes } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    },
  };
  return ctx;
}

async function main() {
  const only = process.argv.slice(2);
  const port = String(await freePort());
  const base = `http://127.0.0.1:${port}`;
  const vars = ensureDevSecrets({ quiet: true });
  const receiver = await startReceiver();
  const restoreVars = pointTelemetryAt(receiver.url);
  // A fresh local state per run, so flows start from empty databases.
  const persistDir = path.join(ROOT, ".wrangler", "state");
  if (process.env.E2E_KEEP_STATE !== "1") rmSync(persistDir, { recursive: true, force: true });
  // Log level "log": the workers' JSON lines are kept, so flows can check what was (not) logged.
  const child = spawn(process.execPath, [path.join(ROOT, "scripts/dev.mjs"), "--port", port, "--log-level", "log"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env: { ...process.env, E2E: "1" },
  });
  let devLog = "";
  child.stdout.on("data", (d) => (devLog += d));
  child.stderr.on("data", (d) => (devLog += d));
  const stop = () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  };
  process.on("exit", stop);
  let passed = 0;
  let failed = 0;
  const started = Date.now();
  try {
    await waitReady(base, child);
    console.log(`e2e: platform ready on ${base} in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    const ctx = makeContext(base, { id: vars.BOOTSTRAP_CLIENT_ID, secret: vars.BOOTSTRAP_CLIENT_SECRET }, { receiver, devLog: () => devLog });
    const files = readdirSync(path.join(ROOT, "e2e", "flows")).filter((f) => f.endsWith(".mjs")).sort();
    for (const f of files) {
      if (only.length && !only.some((o) => f.includes(o))) continue;
      const mod = await import(path.join(ROOT, "e2e", "flows", f));
      const name = mod.name ?? f;
      const t0 = Date.now();
      try {
        await mod.default(ctx);
        passed++;
        console.log(`  ok   ${name} (${Date.now() - t0} ms)`);
      } catch (err) {
        failed++;
        console.log(`  FAIL ${name}: ${err?.stack ?? err}${err?.cause ? `\n    cause: ${err.cause?.stack ?? err.cause}` : ""}`);
      }
    }
  } catch (err) {
    failed++;
    console.log(`e2e: ${err?.message ?? err}\n--- dev server output ---\n${devLog.slice(-5000)}`);
  } finally {
    if (failed > 0 && process.env.E2E_QUIET !== "1") console.log(`--- dev server output (tail) ---\n${devLog.slice(-4000)}`);
    // E2E_DEV_LOG=<file>: keep the whole dev server output (it can hold request paths; local runs only).
    if (process.env.E2E_DEV_LOG) writeFileSync(process.env.E2E_DEV_LOG, devLog);
    stop();
    restoreVars();
    await receiver.close();
  }
  console.log(`\ne2e: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
