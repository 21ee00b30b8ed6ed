import { AsyncLocalStorage } from "node:async_hooks";

/** Env vars and secrets telemetry reads; all optional (no endpoint = no telemetry work at all). */
export interface TelemetryEnv {
  ENVIRONMENT?: string;
  /** OTLP/HTTP base URL of the collector, e.g. https://otel.example.com:4318 (traces go to /v1/traces). */
  OTEL_EXPORTER_OTLP_ENDPOINT?: string;
  /** Extra headers, `k1=v1,k2=v2` as in the OpenTelemetry spec (e.g. an API key): a secret. */
  OTEL_EXPORTER_OTLP_HEADERS?: string;
  /** Milliseconds between metric exports per isolate (OpenTelemetry's name; default 10000). */
  OTEL_METRIC_EXPORT_INTERVAL?: string;
  /** Milliseconds between trace and log exports per isolate (OpenTelemetry's name; default 1000). */
  OTEL_BSP_SCHEDULE_DELAY?: string;
  /** Buffered spans (or log records) that make an export due before the delay is up (default 512). */
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE?: string;
  /** Head sampling ratio of new traces, 0..1 (OpenTelemetry's name; default 1). Error traces are always kept. */
  OTEL_TRACES_SAMPLER_ARG?: string;
}

export interface BatchPolicy {
  /** At most one trace POST and one log POST per isolate per this many ms... */
  delayMs: number;
  /** ...unless this many spans or log records are waiting. */
  maxBatch: number;
}

export const DEFAULT_BATCH: BatchPolicy = { delayMs: 1000, maxBatch: 512 };

/** Where and how one request's telemetry is exported: plain data, derived from its env. */
export interface ExportTarget {
  endpoint: string;
  headers: Record<string, string>;
  environment: string;
  policy: BatchPolicy;
  ratio: number;
}

/**
 * OTEL_EXPORTER_OTLP_HEADERS values are percent-decoded (the OpenTelemetry spec's W3C Baggage format); a value
 * that is not valid percent-encoding (an API key with a bare `%`) is kept as written rather than failing every
 * request of the worker.
 */
function decodeOrRaw(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export function parseOtlpHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (raw ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    out[decodeOrRaw(pair.slice(0, eq).trim())] = decodeOrRaw(pair.slice(eq + 1).trim());
  }
  return out;
}

export function otlpUrl(endpoint: string, signal: "traces" | "metrics" | "logs"): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/${signal}`;
}

function intIn(raw: string | undefined, min: number, max: number, fallback: number): number {
  const n = Number(raw ?? NaN);
  return Number.isInteger(n) && n >= min && n <= max ? n : fallback;
}

export function batchPolicyFrom(env: TelemetryEnv): BatchPolicy {
  return {
    // Bounded well inside the 30 s a Worker's waitUntil may run after its response.
    delayMs: intIn(env.OTEL_BSP_SCHEDULE_DELAY, 0, 10_000, DEFAULT_BATCH.delayMs),
    maxBatch: intIn(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 1, 4096, DEFAULT_BATCH.maxBatch),
  };
}

export function samplerRatio(env: TelemetryEnv): number {
  const r = Number(env.OTEL_TRACES_SAMPLER_ARG ?? NaN);
  return Number.isFinite(r) && r >= 0 && r <= 1 ? r : 1;
}

/** The settings an export target is made of, as read from an env (compared field by field, no allocation). */
const SETTINGS = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS", "ENVIRONMENT", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_TRACES_SAMPLER_ARG"] as const;

let cached: { from: (string | undefined)[]; target: ExportTarget } | undefined;

/** The export target of this env, or undefined when no endpoint is set (telemetry off). */
export function exportTarget(env: TelemetryEnv): ExportTarget | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return undefined;
  // The env is the same on every request of an isolate: parse it once, reuse while its settings are unchanged.
  if (cached && SETTINGS.every((k, i) => cached?.from[i] === env[k])) return cached.target;
  cached = {
    from: SETTINGS.map((k) => env[k]),
    target: {
      endpoint,
      headers: parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS),
      environment: env.ENVIRONMENT ?? "unknown",
      policy: batchPolicyFrom(env),
      ratio: samplerRatio(env),
    },
  };
  return cached.target;
}

/**
 * The export target of the request this code runs for. Set by the handler
 * wrapper around an exporting request only, so the span processor and the
 * logger know, without a global switch, whether (and where) this request's
 * telemetry goes. Each request reads its own store; nothing crosses requests.
 */
export const requestTarget = new AsyncLocalStorage<ExportTarget>();
