// A small OTLP/HTTP receiver on 127.0.0.1 for the end-to-end run: it keeps what the workers export
// and decodes it with the official OTLP protobuf definitions shipped in @opentelemetry/otlp-transformer.
// Modes: "ok" (200), "refuse" (503), "slow" (answers after 3 s), to show a collector never slows requests.
// Also the OTLP receiver of the auth test project (workers/auth/test/fixtures/otlp.mjs): GET /_counts and
// GET /_find?trace=<id> | ?request_id=<id> answer what it holds, for tests running inside workerd.
import http from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js");
const TraceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const MetricsRequest = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const LogsRequest = root.opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest;

const hexToB64 = (h) => (typeof h === "string" && /^[0-9a-f]*$/i.test(h) ? Buffer.from(h, "hex").toString("base64") : h);

/** Log records carry trace and span ids in hex too. */
function normalizeLogsJson(obj) {
  for (const rl of obj.resourceLogs ?? []) {
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        if (r.traceId) r.traceId = hexToB64(r.traceId);
        if (r.spanId) r.spanId = hexToB64(r.spanId);
      }
    }
  }
  return obj;
}

/** OTLP/JSON writes ids in hex; the protobuf JSON mapping wants base64 for bytes. */
function normalizeTraceJson(obj) {
  for (const rs of obj.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        s.traceId = hexToB64(s.traceId);
        s.spanId = hexToB64(s.spanId);
        if (s.parentSpanId) s.parentSpanId = hexToB64(s.parentSpanId);
        for (const l of s.links ?? []) {
          l.traceId = hexToB64(l.traceId);
          l.spanId = hexToB64(l.spanId);
        }
      }
    }
  }
  return obj;
}

function decode(Type, body, contentType, normalize) {
  const msg = contentType.includes("protobuf") ? Type.decode(body) : Type.fromObject(normalize(JSON.parse(body.toString("utf8"))));
  const err = Type.verify(msg);
  if (err) throw new Error(`OTLP message does not verify: ${err}`);
  return msg;
}

const hex = (b) => Buffer.from(b ?? []).toString("hex");
const attrs = (list) => Object.fromEntries((list ?? []).map((a) => [a.key, a.value?.stringValue ?? a.value?.intValue?.toString() ?? a.value?.doubleValue ?? a.value?.boolValue]));

/** Answers the test queries (GET /_counts, GET /_find): true when it did. */
function query(state, req, res) {
  if (req.method !== "GET" || !req.url?.startsWith("/_")) return false;
  const u = new URL(req.url, "http://x");
  let body;
  if (u.pathname === "/_counts") {
    const svc = u.searchParams.get("service");
    const of = (list) => (svc ? list.filter((x) => x.service === svc) : list).length;
    body = { posts: state.posts, spans: of(state.spans), logs: of(state.logs), metrics: of(state.metrics), errors: state.errors };
  } else if (u.pathname === "/_find") {
    const trace = u.searchParams.get("trace");
    const rid = u.searchParams.get("request_id");
    body = {
      spans: state.spans.filter((s) => s.traceId === trace).map(({ service, name, traceId, spanId, parentSpanId }) => ({ service, name, traceId, spanId, parentSpanId })),
      logs: state.logs.filter((l) => (trace && l.traceId === trace) || (rid && l.attributes.request_id === rid)),
    };
  }
  res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
  res.end(JSON.stringify(body ?? {}));
  return true;
}

/** `keepRaw: false` keeps decoded records only (a test run sends tens of thousands of requests). */
export async function startReceiver({ keepRaw = true } = {}) {
  const state = { mode: "ok", raw: [], spans: [], metrics: [], logs: [], errors: [], posts: { traces: 0, metrics: 0, logs: 0 } };
  const server = http.createServer((req, res) => {
    if (query(state, req, res)) return;
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (keepRaw) state.raw.push(body.toString("utf8"));
      const signal = req.url?.slice(4);
      if (signal in state.posts) state.posts[signal]++;
      try {
        const type = req.headers["content-type"] ?? "";
        if (req.url === "/v1/traces") {
          const msg = decode(TraceRequest, body, type, normalizeTraceJson);
          for (const rs of msg.resourceSpans) {
            const resource = attrs(rs.resource?.attributes);
            for (const ss of rs.scopeSpans) {
              for (const s of ss.spans) {
                state.spans.push({ service: resource["service.name"], resource, name: s.name, traceId: hex(s.traceId), spanId: hex(s.spanId), parentSpanId: hex(s.parentSpanId), attributes: attrs(s.attributes), start: String(s.startTimeUnixNano ?? ""), end: String(s.endTimeUnixNano ?? ""), links: (s.links ?? []).map((l) => ({ traceId: hex(l.traceId), spanId: hex(l.spanId) })) });
              }
            }
          }
        } else if (req.url === "/v1/logs") {
          const msg = decode(LogsRequest, body, type, normalizeLogsJson);
          for (const rl of msg.resourceLogs) {
            const resource = attrs(rl.resource?.attributes);
            for (const sl of rl.scopeLogs) {
              for (const r of sl.logRecords) {
                state.logs.push({ service: resource["service.name"], severity: r.severityText, body: r.body?.stringValue, attributes: attrs(r.attributes), traceId: hex(r.traceId), spanId: hex(r.spanId) });
              }
            }
          }
        } else if (req.url === "/v1/metrics") {
          const msg = decode(MetricsRequest, body, type, (o) => o);
          for (const rm of msg.resourceMetrics) {
            const resource = attrs(rm.resource?.attributes);
            for (const sm of rm.scopeMetrics) {
              for (const m of sm.metrics) {
                const points = m.sum?.dataPoints ?? m.histogram?.dataPoints ?? m.gauge?.dataPoints ?? [];
                for (const p of points) {
                  state.metrics.push({ service: resource["service.name"], name: m.name, labels: attrs(p.attributes), value: p.asDouble ?? p.count?.toNumber?.() ?? p.count, kind: m.sum ? "sum" : m.histogram ? "histogram" : "gauge" });
                }
              }
            }
          }
        }
      } catch (e) {
        state.errors.push(String(e));
      }
      const answer = () => {
        res.writeHead(state.mode === "refuse" ? 503 : 200, { "content-type": "application/json" });
        res.end("{}");
      };
      if (state.mode === "slow") setTimeout(answer, 3000);
      else answer();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, state, server, close: () => new Promise((r) => server.close(r)) };
}
