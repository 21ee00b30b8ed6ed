import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { SpanImpl } from "@microlabs/otel-cf-workers";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { Span } from "@opentelemetry/sdk-trace-base";
import { diag } from "@opentelemetry/api";
import { describe, expect, it, vi } from "vitest";
import { buffered, exportDue, exportStats } from "../../../shared/telemetry/buffer";
import { RequestTraceProcessor, traceProcessor } from "../../../shared/telemetry/processor";
import { requestTarget, exportTarget } from "../../../shared/telemetry/target";
import { jsonLines } from "../../../shared/testing/log-lines";
import worker from "../src/index";
import { BASE } from "./helpers";

/**
 * Telemetry with export on (issue 17): the trace state an isolate keeps is
 * bounded whatever the request count, exports are batched per isolate without
 * any request touching another's promise, and with no endpoint nothing is made.
 * The OTLP receiver is a real HTTP server on 127.0.0.1 (test/fixtures/otlp.mjs).
 */

const receiver = env.OTLP_RECEIVER;
const exporting = { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver } as Env;

type Counts = { posts: { traces: number; logs: number; metrics: number }; spans: number; logs: number; errors: string[] };
type Found = { spans: { service: string; name: string; traceId: string }[]; logs: { traceId: string; spanId: string; attributes: Record<string, unknown> }[] };

const counts = async (service: string): Promise<Counts> => (await fetch(`${receiver}/_counts?service=${service}`)).json<Counts>();
const find = async (q: string): Promise<Found> => (await fetch(`${receiver}/_find?${q}`)).json<Found>();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gateway's fetch handler in this isolate with `e`; its waitUntil work (the export) is awaited. */
async function call(e: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const handler = worker as Required<Pick<ExportedHandler<Env>, "fetch">>;
  const res = await handler.fetch(new Request(BASE + path, init) as Request<unknown, IncomingRequestCfProperties>, e, ctx);
  await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return res;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(await counts("phi"))}`);
}

// First in the file: an isolate either exports or does not (one env per deployment). Once requests with an
// endpoint have run here, the library's global instrumentation is in place, which a deployment without an
// endpoint never has.
describe("telemetry: off means off, sampling keeps errors", () => {
  it("without an endpoint the handler makes no span and buffers nothing, and still names the trace it forwards", async () => {
    // The counters are the isolate's: work another test file left running here (a waitUntil of an exporting
    // request) may start a span meanwhile. A handler that made spans would make them on every attempt.
    const clean: boolean[] = [];
    for (let attempt = 0; attempt < 3 && !clean.includes(true); attempt++) {
      const started = traceProcessor.started;
      const before = buffered();
      const res = await call(env, "/nope", { headers: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } });
      expect(res.status).toBe(404);
      clean.push(traceProcessor.started === started && JSON.stringify(buffered()) === JSON.stringify(before));
    }
    expect(clean).toContain(true);
  });

  it("an unsampled trace serializes nothing unless it failed; a failed one is kept whole", () => {
    const p = new RequestTraceProcessor();
    const resource = resourceFromAttributes({ "service.name": "sampling-test" });
    const span = (traceId: string, flags: number, parent?: string): SpanImpl =>
      new SpanImpl({
        name: "s",
        attributes: {},
        resource,
        spanKind: parent ? SpanKind.CLIENT : SpanKind.SERVER,
        spanContext: { traceId, spanId: crypto.randomUUID().replace(/-/g, "").slice(0, 16), traceFlags: flags },
        ...(parent ? { parentSpanId: parent } : {}),
        onEnd: (s) => p.onEnd(s as unknown as Span),
      });
    const trace = (traceId: string, flags: number, fail: "none" | "status" | "http500") => {
      const root = span(traceId, flags);
      p.onStart(root, ROOT_CONTEXT);
      const child = span(traceId, flags, root.spanContext().spanId);
      p.onStart(child, ROOT_CONTEXT);
      child.end();
      if (fail === "status") root.setStatus({ code: SpanStatusCode.ERROR });
      if (fail === "http500") root.setAttribute("http.response.status_code", 503);
      root.end();
    };
    const spans0 = exportStats.spans;
    // No export target in this context: forceFlush settles the trace into the buffer and sends nothing.
    trace("a".repeat(32), 0, "none");
    void p.forceFlush("a".repeat(32));
    expect(exportStats.spans - spans0).toBe(0);
    trace("b".repeat(32), 0, "status");
    void p.forceFlush("b".repeat(32));
    expect(exportStats.spans - spans0).toBe(2);
    trace("c".repeat(32), 0, "http500");
    void p.forceFlush("c".repeat(32));
    expect(exportStats.spans - spans0).toBe(4);
    trace("d".repeat(32), 1, "none");
    void p.forceFlush("d".repeat(32));
    expect(exportStats.spans - spans0).toBe(6);
    expect(p.retained).toBe(0);
  });

  it("holds at most MAX_TRACES traces when requests never finish (cancelled), and exports what had ended", () => {
    const p = new RequestTraceProcessor();
    const resource = resourceFromAttributes({ "service.name": "abandoned-test" });
    for (let i = 0; i < 2000; i++) {
      const s = new SpanImpl({ name: "never flushed", attributes: {}, resource, spanContext: { traceId: i.toString(16).padStart(32, "0"), spanId: "00f067aa0ba902b7", traceFlags: 1 }, onEnd: () => undefined });
      p.onStart(s, ROOT_CONTEXT);
    }
    expect(p.retained).toBeLessThanOrEqual(512);
    expect(p.abandoned).toBeGreaterThanOrEqual(2000 - 512);
  });

  it("reports an export as due by interval or by size, never when empty", () => {
    const policy = { delayMs: 1000, maxBatch: 3 };
    expect(exportDue(policy, 0, 10_000, 0, 0)).toBe(false);
    expect(exportDue(policy, 9_500, 10_000, 1, 0)).toBe(false);
    expect(exportDue(policy, 9_000, 10_000, 1, 0)).toBe(true);
    expect(exportDue(policy, 9_900, 10_000, 3, 0)).toBe(true);
    expect(exportDue(policy, 9_900, 10_000, 0, 3)).toBe(true);
    // The target of a request is visible only inside that request's scope.
    const target = exportTarget(exporting);
    expect(target).toBeDefined();
    expect(requestTarget.getStore()).toBeUndefined();
    if (target) expect(requestTarget.run(target, () => requestTarget.getStore())).toBe(target);
  });

  it("routes OpenTelemetry's own diagnostics through our logger: one JSON object a line", () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, "warn").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    try {
      diag.error("exporting spans failed! OTLPExporterError: Network connection lost");
      diag.warn("a warning");
      diag.info("not shown");
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(2);
    expect(jsonLines(lines)).toMatchObject([
      { level: "warn", msg: "otel_diagnostic", otel_level: "error", detail: "exporting spans failed! OTLPExporterError: Network connection lost" },
      { level: "warn", msg: "otel_diagnostic", otel_level: "warn" },
    ]);
  });
});

describe("telemetry: bounded trace state and batched export", () => {
  it("keeps the retained trace state bounded by a constant over 10,000 requests through one isolate with export on", async () => {
    const before = { ...exportStats };
    let peak = 0;
    for (let i = 0; i < 10_000; i += 10) {
      // Ten at a time, as an isolate serves concurrent requests.
      const batch = Array.from({ length: 10 }, (_, j) => call(exporting, (i + j) % 2 ? "/nope" : "/.well-known/jwks.json"));
      peak = Math.max(peak, traceProcessor.retained);
      for (const res of await Promise.all(batch)) expect([200, 404]).toContain(res.status);
    }
    // Held only while a request runs: at most the requests in flight, none once they are done.
    expect(peak).toBeLessThanOrEqual(10);
    expect(traceProcessor.retained).toBe(0);
    const spans = exportStats.spans - before.spans;
    const posts = exportStats.tracePosts - before.tracePosts;
    expect(spans).toBeGreaterThanOrEqual(10_000);
    // One POST per isolate per second, plus one per 512 spans: never one per request.
    expect(posts).toBeGreaterThan(0);
    expect(posts).toBeLessThan(1_000);
    expect(exportStats.failures - before.failures).toBe(0);
    // What is still buffered goes with the next request once the interval is up; then every span has arrived.
    await sleep(1100);
    await call(exporting, "/nope");
    const sent = exportStats.spans - before.spans;
    const got = await until("every span at the receiver", async () => {
      const c = await counts("auth");
      return c.spans >= sent ? c : undefined;
    });
    expect(got.errors).toEqual([]);
    expect(buffered().spans).toBe(0);
    console.warn(JSON.stringify({ time: new Date().toISOString(), level: "warn", msg: "telemetry_leak_test", requests: 10_001, peak_retained: peak, spans, trace_posts: posts, log_posts: exportStats.logPosts - before.logPosts }));
  });

  it("sends the structured log lines to /v1/logs with the trace and span ids of their request", async () => {
    const rid = `telemetry-log-${crypto.randomUUID()}`;
    await sleep(1100);
    const res = await call(exporting, "/nope", { headers: { "x-request-id": rid } });
    expect(res.status).toBe(404);
    const found = await until("the request's log record", async () => {
      const f = await find(`request_id=${rid}`);
      return f.logs.length > 0 ? f : undefined;
    });
    const log = found.logs[0];
    expect(log?.attributes).toMatchObject({ request_id: rid, route: "unmatched", status: "404", service: "auth" });
    expect(log?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(log?.spanId).toMatch(/^[0-9a-f]{16}$/);
    // The same trace's spans came in the same flush.
    const spans = await find(`trace=${log?.traceId ?? ""}`);
    expect(spans.spans.some((s) => s.service === "auth")).toBe(true);
  });

  it("aborted in-flight requests never stall later ones, and every completed request's spans arrive", async () => {
    // phi exports to the receiver (vitest.config.ts); these reach it over its real service binding.
    // Its readiness check (a D1 query, traced) rather than a FHIR route: every FHIR request appends to
    // the audit chain, whose per-isolate turn-taking (shared/audit-chain.ts) chains each request onto
    // the previous one's promise, so an aborted request stalls the appends after it whatever telemetry does.
    const phi = (rid: string, signal?: AbortSignal) => env.PHI.fetch(new Request("https://phi.internal/readiness", { headers: { "x-request-id": rid }, signal }));
    const run = crypto.randomUUID();
    let cut = 0;
    const aborted = Array.from({ length: 40 }, async (_, i) => {
      const ac = new AbortController();
      const p = phi(`abort-${run}-${i}`, ac.signal);
      // Some at once (the request is already on its way), the others a few ms into it.
      if (i % 3 === 0) ac.abort();
      else setTimeout(() => ac.abort(), i % 4);
      try {
        await (await p).arrayBuffer();
      } catch {
        cut++; // aborted before its answer: the point of the test
      }
    });
    const during = Array.from({ length: 20 }, (_, i) => phi(`during-${run}-${i}`));
    const completed: string[] = [];
    for (const [i, res] of (await Promise.all(during)).entries()) {
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      completed.push(`during-${run}-${i}`);
    }
    await Promise.all(aborted);
    expect(cut).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) {
      const res = await phi(`after-${run}-${i}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      completed.push(`after-${run}-${i}`);
    }
    // The last batch leaves with the first request after the interval.
    await sleep(1100);
    await (await phi(`flush-${run}`)).arrayBuffer();
    for (const rid of completed) {
      const trace = await until(`the log record of ${rid}`, async () => (await find(`request_id=${rid}`)).logs.find((l) => l.traceId)?.traceId);
      const spans = await until(`the spans of ${rid}`, async () => {
        const f = await find(`trace=${trace}`);
        return f.spans.some((s) => s.service === "phi") ? f.spans : undefined;
      });
      expect(spans.length).toBeGreaterThan(0);
    }
  });
});
