import { OTLPExporter, type ResolveConfigFn, type TraceConfig } from "@microlabs/otel-cf-workers";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
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

/** The span exporter for this env: OTLP/HTTP with redaction, or one that drops everything. */
export function spanExporter(env: TelemetryEnv) {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return dropAll;
  const exporter = new OTLPExporter({ url: otlpUrl(endpoint, "traces"), headers: parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS) });
  return redactingExporter(exporter, redactSpans(env.ENVIRONMENT ?? "unknown"));
}

/** The otel-cf-workers configuration of one worker, resolved from its env. */
export function traceConfig(service: string): ResolveConfigFn<TelemetryEnv> {
  return (env): TraceConfig => {
    return {
      service: { name: service, namespace: "health-platform", version: VERSION },
      exporter: spanExporter(env),
      postProcessor: redactSpans(env.ENVIRONMENT ?? "unknown"),
      // Trace context crosses our service bindings; the gateway does not trust a client's traceparent.
      handlers: { fetch: { acceptTraceContext: service !== "auth" } },
      fetch: { includeTraceContext: true },
    };
  };
}
