#!/usr/bin/env node
// The shared app's per-request edge in isolation (`node bench/edge.mjs`): one worker per mode in one runtime,
// measured in turns, CPU per request of the runtime. Modes: a raw handler, a plain Hono route, `createApp`
// without its access line (LOG_LEVEL=warn, as behind the gateway) and with it (as at the gateway).
import { bundleTwin, measure, startMiniflare } from "./lib.mjs";

// The measured worker: the same "ok" from a raw handler, a plain Hono route, or `createApp` (shared/http.ts),
// chosen per worker by its MODE binding. Bundled from this source (not a file the Node-side type check follows).
const SOURCE = `
import { Hono } from "hono";
import { createApp } from "./shared/http";
const edge = createApp({ service: "edge", accessLog: "info" });
edge.get("/ok", (c) => c.text("ok"));
const plain = new Hono();
plain.get("/ok", (c) => c.text("ok"));
export default {
  fetch(req, env, ctx) {
    if (env.MODE === "raw") return new Response("ok");
    return (env.MODE === "hono" ? plain : edge).fetch(req, env, ctx);
  },
};`;
const outfile = await bundleTwin("edge.js", SOURCE);
const MODES = [
  ["raw", "raw handler", {}],
  ["hono", "plain Hono route", {}],
  ["quiet", "createApp, no access line", { LOG_LEVEL: "warn" }],
  ["full", "createApp with its access line", { LOG_LEVEL: "info" }],
];
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const { mf, url } = await startMiniflare(
  MODES.map(([key, , vars]) => ({
    name: `edge-${key}`,
    compatibilityDate: "2026-08-15",
    compatibilityFlags: ["nodejs_compat"],
    modules: true,
    scriptPath: outfile,
    bindings: { MODE: key, ...vars },
    routes: [`*/${key}/*`],
  })),
);
try {
  const sums = Object.fromEntries(MODES.map(([key]) => [key, []]));
  for (let round = 0; round < 2; round++) {
    for (const [key] of MODES) {
      await measure({ url: `${url}/${key}/ok`, duration: 1, connections: 32 });
      sums[key].push((await measure({ url: `${url}/${key}/ok`, duration: SECONDS, connections: 32 })).cpuMsPerReq);
    }
  }
  const base = Math.min(...sums.raw);
  for (const [key, label] of MODES) {
    const best = Math.min(...sums[key]);
    console.log(`${label.padEnd(34)} ${best.toFixed(3)} ms CPU/req (best of 2), +${(best - base).toFixed(3)} over the raw handler`);
  }
} finally {
  await mf.dispose();
}
