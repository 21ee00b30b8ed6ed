// Bench plumbing: Miniflare instances from built bundles, load with autocannon, CPU of the runtime.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { Miniflare } from "miniflare";

export const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

/** Every workerd process below this Node process (Miniflare spawns them). */
function runtimePids() {
  const pids = [];
  const parentOf = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parentOf.set(Number(d), { ppid: Number(fields[1]), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      /* gone */
    }
  }
  for (const [pid, { comm }] of parentOf) {
    if (!comm.startsWith("workerd")) continue;
    let p = pid;
    while (p > 1) {
      p = parentOf.get(p)?.ppid ?? 0;
      if (p === process.pid) {
        pids.push(pid);
        break;
      }
    }
  }
  return pids;
}

/** CPU seconds (user + system) used so far by the runtime processes. */
export function runtimeCpuSeconds() {
  let ticks = 0;
  for (const pid of runtimePids()) {
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

export async function startMiniflare(workers) {
  const persist = mkdtempSync(path.join(os.tmpdir(), "bench-"));
  const mf = new Miniflare({
    workers,
    host: "127.0.0.1",
    port: 0,
    d1Persist: path.join(persist, "d1"),
    durableObjectsPersist: path.join(persist, "do"),
    // Workers' own log lines are part of their cost; drain them rather than print.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  const url = await mf.ready;
  return { mf, url: url.toString().replace(/\/$/, "") };
}

/** Applies drizzle-kit migrations (`--> statement-breakpoint` separated) to a D1 binding. */
export async function migrate(db, dir) {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".sql")).sort()) {
    for (const stmt of readFileSync(path.join(dir, f), "utf8").split("--> statement-breakpoint")) {
      if (stmt.trim()) await db.prepare(stmt).run();
    }
  }
}

/** Runs autocannon and the CPU meter around it. */
export async function measure(opts) {
  const cpu0 = runtimeCpuSeconds();
  const result = await autocannon({ connections: 32, duration: 10, ...opts });
  const cpu = runtimeCpuSeconds() - cpu0;
  const total = result.requests.total;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    requests: total,
    cpuMsPerReq: total > 0 ? (cpu * 1000) / total : NaN,
  };
}
