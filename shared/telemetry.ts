import { BatchTraceSpanProcessor, OTLPExporter, type ResolveConfigFn, type TraceConfig, type TraceFlushableSpanProcessor } from "@microlabs/otel-cf-workers";
import type { Context } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan, Span } from "@opentelemetry/sdk-trace-base";
import { redactAttribute, redactPath } from "./redact";
import { VERSION } from "./version";

/** Env vars and secrets telemetry reads; all optional (no endpoint = nothing exported). */
export interface TelemetryEnv {
  ENVIRONMENT?: string;
  /** OTLP/HTTP base URL of the collector, e.g. https://otel.example.com:4318 (traces go to /v1/traces). */
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  /** Extra headers, `k1=v1,k2=v2` as in the OpenTelemetry spec (e.g. an API key): a secret. */
  OTEL_EXPORTER_OTLP_HEADERS?: string;
  /** Milliseconds between metric exports per isolate (OpenTelemetry's name; default 10000). */
  OTEL_METRIC_EXPORT_INTERVAL?: string;
  /** Milliseconds the isolate gathers finished traces before one export (OpenTelemetry's name; default 1000, 0 = one export per request). */
  OTEL_BSP_SCHEDULE_DELAY?: string;
  /** Spans that trigger an export before the delay is up (OpenTelemetry's name; default 512). */
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE?: string;
}

export function parseOtlpHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (raw ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    out[decodeURIComponent(pair.slice(0, eq).trim())] = decodeURIComponent(pair.slice(eq + 1).trim());
  }
  return out;
}

export function otlpUrl(endpoint: string, signal: "traces" | "metrics"): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/${signal}`;
}

type ExportResult = { code: number };

/** An exporter that drops everything: used when no collector is configured. */
const dropAll = {
  export(_spans: ReadableSpan[], done: (r: ExportResult) => void) {
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
};

/**
 * Redacts every batch before the OTLP exporter sees it. (otel-cf-workers
 * 1.0.0-rc.52 accepts a `postProcessor` option but never calls it, so the
 * redaction cannot rely on it.)
 */
function redactingExporter(inner: OTLPExporter, redact: (spans: ReadableSpan[]) => ReadableSpan[]) {
  return {
    export(spans: ReadableSpan[], done: (r: ExportResult) => void) {
      inner.export(redact(spans), done);
    },
    shutdown: () => inner.shutdown(),
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Redacts every span before export (identifiers in paths, query values,
 * sensitive attribute names) and adds `deployment.environment`.
 */
export function redactSpans(environment: string) {
  const extra = resourceFromAttributes({ "deployment.environment": environment, "deployment.environment.name": environment });
  return (spans: ReadableSpan[]): ReadableSpan[] => {
    for (const span of spans) {
      const s = span as Mutable<ReadableSpan>;
      const attrs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(span.attributes)) {
        const r = redactAttribute(k, v);
        if (r !== undefined) attrs[k] = r;
      }
      s.attributes = attrs as ReadableSpan["attributes"];
      // Span names built from raw paths ("GET /v1/phi/Patient/123") lose the id too.
      s.name = span.name.replace(/\/[^\s]*/g, (p) => redactPath(p.split("?")[0] ?? ""));
      s.resource = span.resource.merge(extra);
    }
    return spans;
  };
}

export interface SpanExporterLike {
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** One exporter per collector configuration and isolate (the env is resolved on every request). */
const exporters = new Map<string, SpanExporterLike>();

function memo(key: unknown[], make: () => SpanExporterLike): SpanExporterLike {
  const k = JSON.stringify(key);
  let e = exporters.get(k);
  if (!e) {
    e = make();
    exporters.set(k, e);
  }
  return e;
}

/** The span exporter for this env: OTLP/HTTP with redaction, or one that drops everything. One POST per call. */
export function spanExporter(env: TelemetryEnv): SpanExporterLike {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return dropAll;
  return memo(["direct", endpoint, env.OTEL_EXPORTER_OTLP_HEADERS ?? "", env.ENVIRONMENT ?? ""], () => {
    const exporter = new OTLPExporter({ url: otlpUrl(endpoint, "traces"), headers: parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS) });
    return redactingExporter(exporter, redactSpans(env.ENVIRONMENT ?? "unknown"));
  });
}

export interface BatchPolicy {
  /** How long the first finished trace waits for others before the export (ms; 0 = export at once). */
  delayMs: number;
  /** Spans that trigger the export before the delay is up. */
  maxSpans: number;
}

export const DEFAULT_BATCH: BatchPolicy = { delayMs: 1000, maxSpans: 512 };

export function batchPolicyFrom(env: TelemetryEnv): BatchPolicy {
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY ?? NaN);
  const size = Number(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE ?? NaN);
  return {
    // Bounded well inside the 30 s a Worker's waitUntil may run after its response.
    delayMs: Number.isInteger(delay) && delay >= 0 && delay <= 10_000 ? delay : DEFAULT_BATCH.delayMs,
    maxSpans: Number.isInteger(size) && size >= 1 && size <= 10_000 ? size : DEFAULT_BATCH.maxSpans,
  };
}

/**
 * Gathers the traces an isolate finishes within `delayMs` into one export.
 * otel-cf-workers exports each request's trace on its own when the request ends
 * (one POST to the collector per request and worker); here the first trace of a
 * window waits `delayMs` in its request's `waitUntil`, the traces that finish
 * meanwhile join it, and one POST carries them all (at once when `maxSpans` are
 * waiting). Every request's own export promise settles when the POST that
 * carried its spans did, so each request keeps its `waitUntil` open until its
 * spans have left: an isolate is not torn down with spans still waiting.
 */
export class BatchingSpanExporter implements SpanExporterLike {
  private waiting: { spans: ReadableSpan[]; done: (r: ExportResult) => void }[] = [];
  private count = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** POSTs made (for tests and diagnostics). */
  exports = 0;

  constructor(
    private readonly inner: SpanExporterLike,
    private readonly policy: BatchPolicy,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (spans.length === 0) return done({ code: 0 });
    this.waiting.push({ spans, done });
    this.count += spans.length;
    if (this.policy.delayMs === 0 || this.count >= this.policy.maxSpans) this.send();
    else this.timer ??= setTimeout(() => this.send(), this.policy.delayMs);
  }

  private send(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    this.count = 0;
    if (batch.length === 0) return;
    this.exports++;
    this.inner.export(
      batch.flatMap((b) => b.spans),
      (r) => {
        for (const b of batch) b.done(r);
      },
    );
  }

  shutdown(): Promise<void> {
    this.send();
    return this.inner.shutdown();
  }
}

/** The exporter the tracing library uses: `spanExporter` behind a per-isolate batching window. */
export function batchedSpanExporter(env: TelemetryEnv): SpanExporterLike {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return dropAll;
  const policy = batchPolicyFrom(env);
  return memo(["batched", env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_EXPORTER_OTLP_HEADERS ?? "", env.ENVIRONMENT ?? "", policy.delayMs, policy.maxSpans], () => new BatchingSpanExporter(spanExporter(env), policy));
}

/**
 * Collects each trace's spans and exports them when the trace is done, then
 * forgets the trace. otel-cf-workers' own `BatchTraceSpanProcessor` (rc.52)
 * keeps a state object per trace id for the life of the isolate, root span
 * included: one more retained object per request, an isolate's memory growing
 * without bound. Here each trace gets a processor of its own, dropped when the
 * library flushes it at the end of the request. A trace the library never
 * flushes (a span started after the flush, outside any handler) is dropped once
 * all its spans ended and it sat idle past the longest `waitUntil` (30 s):
 * its spans were exported when the last one ended.
 */
export class PerTraceSpanProcessor implements TraceFlushableSpanProcessor {
  private readonly traces = new Map<string, { p: BatchTraceSpanProcessor; open: number; idleSince: number }>();

  constructor(
    private readonly exporter: SpanExporterLike,
    private readonly sweepAt = 256,
    private readonly idleMs = 30_000,
  ) {}

  /** Traces kept (for tests and diagnostics). */
  get open(): number {
    return this.traces.size;
  }

  onStart(span: Span, parent: Context): void {
    const id = span.spanContext().traceId;
    let t = this.traces.get(id);
    if (!t) {
      if (this.traces.size >= this.sweepAt) this.sweep(Date.now());
      t = { p: new BatchTraceSpanProcessor(this.exporter), open: 0, idleSince: 0 };
      this.traces.set(id, t);
    }
    t.open++;
    t.p.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    const t = this.traces.get(span.spanContext().traceId);
    // Unknown: its trace was flushed, which ended and exported every span still open.
    if (!t) return;
    if (--t.open === 0) t.idleSince = Date.now();
    t.p.onEnd(span);
  }

  async forceFlush(traceId?: string): Promise<void> {
    const ids = traceId === undefined ? [...this.traces.keys()] : [traceId];
    await Promise.allSettled(
      ids.map(async (id) => {
        const t = this.traces.get(id);
        if (!t) return;
        this.traces.delete(id);
        await t.p.forceFlush(id);
      }),
    );
  }

  private sweep(now: number): void {
    for (const [id, t] of this.traces) if (t.open === 0 && now - t.idleSince > this.idleMs) this.traces.delete(id);
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }
}

/** Spans are still made (their context crosses the bindings and names the logs' trace ids) but nobody collects them. */
const collectNothing: TraceFlushableSpanProcessor = {
  onStart: () => undefined,
  onEnd: () => undefined,
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

/** The span processor of this env: per-trace collection into the batching exporter, or nothing without an endpoint. */
export function spanProcessor(env: TelemetryEnv): TraceFlushableSpanProcessor {
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return collectNothing;
  const exporter = batchedSpanExporter(env);
  let p = processors.get(exporter);
  if (!p) {
    p = new PerTraceSpanProcessor(exporter);
    processors.set(exporter, p);
  }
  return p;
}
const processors = new WeakMap<SpanExporterLike, PerTraceSpanProcessor>();

/** The otel-cf-workers configuration of one worker, resolved from its env. */
export function traceConfig(service: string): ResolveConfigFn<TelemetryEnv> {
  return (env): TraceConfig => {
    return {
      service: { name: service, namespace: "health-platform", version: VERSION },
      spanProcessors: spanProcessor(env),
      // Trace context crosses our service bindings; the gateway does not trust a client's traceparent.
      handlers: { fetch: { acceptTraceContext: service !== "auth" } },
      fetch: { includeTraceContext: true },
    };
  };
}
