#!/usr/bin/env node
// What tracing one request costs at the least (`node bench/telemetry-floor.mjs`): a handler that answers "ok"
// with no other work, in one runtime, measured in turns, CPU per request of the runtime. Modes:
// - raw: the handler alone;
// - traced, off: wrapped by shared/telemetry.ts `traced` with no endpoint (must match raw: off means off);
// - traced, on: the same wrapper exporting to an OTLP sink on 127.0.0.1 (otel-cf-workers: one server span,
//   our processor, buffer and batched export);
// - minimal tracer: a hand-written tracer doing the same observable work (one server span with its ids,
//   times, method, URL and status, held in AsyncLocalStorage, serialized to OTLP/JSON into an isolate
//   buffer and POSTed at most once a second in the request's own waitUntil). It is the floor any tracer
//   has to pay, shown beside the library's.
// The difference between "traced, on" and "minimal tracer" is the library's own per-request cost.
import { spawn } from "node:child_process";
import path from "node:path";
import { once } from "node:events";
import { ROOT } from "../scripts/workers.mjs";
import { bundleTwin, compareModes } from "./lib.mjs";

const SOURCE = `
import { AsyncLocalStorage } from "node:async_hooks";
import { traced } from "./shared/telemetry";
const ok = { fetch: () => new Response("ok") };
const wrapped = traced(ok, "floor");

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const hex = (b, from, to) => { let s = ""; for (let i = from; i < to; i++) s += HEX[b[i]]; return s; };
const current = new AsyncLocalStorage();
let buffer = [];
let last = 0;
function minimal(req, env, ctx) {
  const ids = crypto.getRandomValues(new Uint8Array(24));
  const span = { traceId: hex(ids, 0, 16), spanId: hex(ids, 16, 24), name: "GET", kind: 2, start: Date.now(), attributes: { "http.request.method": req.method, "url.full": req.url } };
  return current.run(span, async () => {
    const res = await ok.fetch(req, env, ctx);
    const end = Date.now();
    span.attributes["http.response.status_code"] = res.status;
    buffer.push(JSON.stringify({
      traceId: span.traceId, spanId: span.spanId, name: span.name, kind: span.kind,
      startTimeUnixNano: String(span.start * 1e6), endTimeUnixNano: String(end * 1e6),
      attributes: Object.entries(span.attributes).map(([key, v]) => ({ key, value: typeof v === "number" ? { intValue: v } : { stringValue: String(v) } })),
      status: {},
    }));
    if (end - last >= 1000) {
      const body = '{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"floor"},"spans":[' + buffer.join(",") + "]}]}]}";
      buffer = [];
      last = end;
      ctx.waitUntil(fetch(env.SINK + "/v1/traces", { method: "POST", headers: { "content-type": "application/json" }, body }).then((r) => r.body?.cancel()));
    }
    return res;
  });
}
export default {
  fetch(req, env, ctx) {
    if (env.MODE === "raw") return ok.fetch(req, env, ctx);
    if (env.MODE === "minimal") return minimal(req, env, ctx);

    return wrapped.fetch(req, env, ctx);
  },
};`;

const sink = spawn(process.execPath, [path.join(ROOT, "bench", "otlp-sink.mjs")], { stdio: ["ignore", "pipe", "inherit"] });
const [line] = await once(sink.stdout, "data");
const sinkUrl = `http://127.0.0.1:${/listening (\d+)/.exec(String(line))[1]}`;

const outfile = await bundleTwin("telemetry-floor.js", SOURCE);
const MODES = [
  ["raw", "raw handler", {}],
  ["off", "traced, off (no endpoint)", {}],
  ["on", "traced, on (otel-cf-workers)", { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl }],
  ["minimal", "minimal tracer, on", { SINK: sinkUrl }],
];
try {
  await compareModes(outfile, MODES, { name: "floor" });
} finally {
  sink.kill("SIGTERM");
}
