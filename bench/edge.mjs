#!/usr/bin/env node
// The shared app's per-request edge in isolation (`node bench/edge.mjs`): one worker per mode in one runtime,
// measured in turns, CPU per request of the runtime. Modes: a raw handler, a plain Hono route, `createApp`
// without its access line (LOG_LEVEL=warn, as behind the gateway) and with it (as at the gateway).
import { bundleTwin, compareModes } from "./lib.mjs";

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
await compareModes(outfile, MODES, { name: "edge" });
