import { __unwrappedFetch } from "@microlabs/otel-cf-workers";
import { JsonMetricsSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { logger } from "./logger";
import { drain, pointCount, type MetricSnapshot } from "./metrics";
import { countExportFailure } from "./telemetry/buffer";
import { otlpUrl, parseOtlpHeaders, type TelemetryEnv } from "./telemetry/target";
import { VERSION } from "./version";

/**
 * OTLP/HTTP JSON export of the in-isolate aggregates (delta temporality),
 * sent with `ctx.waitUntil` after the response, never on its critical path:
 * at most every `intervalMs`, or sooner when `maxPoints` label sets pile up.
 *
 * What can be lost: the deltas aggregated since the last flush when the
 * isolate is evicted before the next request triggers one (at most
 * `intervalMs` of data per isolate), and a batch the collector refuses
 * (dropped after one attempt and counted in `otlp_export_failures_total`,
 * so a down collector never slows requests). The batch is drained
 * synchronously and POSTed with the caller's own fetch in its own
 * `waitUntil`: no request touches another's promise.
 */
export interface ExportPolicy {
  intervalMs: number;
  maxPoints: number;
}

export const DEFAULT_POLICY: ExportPolicy = { intervalMs: 10_000, maxPoints: 500 };

export function policyFrom(env: TelemetryEnv): ExportPolicy {
  const ms = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  return Number.isInteger(ms) && ms >= 100 ? { ...DEFAULT_POLICY, intervalMs: ms } : DEFAULT_POLICY;
}

/** Pure: is an export due? */
export function flushDue(policy: ExportPolicy, lastFlushMs: number, nowMs: number, points: number): boolean {
  if (points === 0) return false;
  return nowMs - lastFlushMs >= policy.intervalMs || points >= policy.maxPoints;
}

type HrTime = [number, number];
const hr = (ms: number): HrTime => [Math.floor(ms / 1000), (ms % 1000) * 1e6];

// Numeric values of the OTLP SDK enums (sdk-metrics DataPointType / AggregationTemporality / ValueType).
const HISTOGRAM = 0;
const GAUGE = 2;
const SUM = 3;
const DELTA = 0;
const DOUBLE = 1;

/** Builds the OTLP ResourceMetrics for one batch of deltas. */
export function toResourceMetrics(batch: MetricSnapshot[], service: string, environment: string, startMs: number, endMs: number) {
  const startTime = hr(startMs);
  const endTime = hr(endMs);
  return {
    resource: resourceFromAttributes({
      "service.name": service,
      "service.namespace": "health-platform",
      "service.version": VERSION,
      "deployment.environment": environment,
      "deployment.environment.name": environment,
    }),
    scopeMetrics: [
      {
        scope: { name: "health-platform", version: VERSION },
        metrics: batch.map((m) => {
          const descriptor = { name: m.name, description: m.description, unit: m.unit, valueType: DOUBLE, advice: {} };
          if (m.kind === "histogram") {
            return {
              descriptor,
              aggregationTemporality: DELTA,
              dataPointType: HISTOGRAM,
              dataPoints: m.points.map((p) => {
                const h = p as { labels: Record<string, string>; count: number; sum: number; min: number; max: number; buckets: number[] };
                return {
                  attributes: h.labels,
                  startTime,
                  endTime,
                  value: { buckets: { boundaries: m.bounds ?? [], counts: h.buckets }, count: h.count, sum: h.sum, min: h.min, max: h.max },
                };
              }),
            };
          }
          const dataPoints = m.points.map((p) => ({ attributes: p.labels, startTime, endTime, value: (p as { value: number }).value }));
          // A gauge's point is the last value observed in the interval; it has no temporality of its own.
          if (m.kind === "gauge") return { descriptor, aggregationTemporality: DELTA, dataPointType: GAUGE, dataPoints };
          return {
            descriptor,
            aggregationTemporality: DELTA,
            dataPointType: SUM,
            isMonotonic: m.kind === "counter",
            dataPoints,
          };
        }),
      },
    ],
  };
}

let lastFlush = Date.now();

/**
 * Called once per request after the response is ready: schedules an export in
 * `waitUntil` when one is due. Without an endpoint, deltas are simply dropped.
 */
export function scheduleMetricsFlush(
  env: TelemetryEnv,
  ctx: { waitUntil(p: Promise<unknown>): void },
  service: string,
  policy: ExportPolicy = policyFrom(env),
  nowMs = Date.now(),
): boolean {
  if (!flushDue(policy, lastFlush, nowMs, pointCount())) return false;
  const start = lastFlush;
  lastFlush = nowMs;
  const batch = drain();
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT) return false;
  const body = JsonMetricsSerializer.serializeRequest(toResourceMetrics(batch, service, env.ENVIRONMENT ?? "unknown", start, nowMs));
  if (!body) return false;
  ctx.waitUntil(
    // The library's unwrapped fetch: an export is not a span of the request that sends it.
    __unwrappedFetch(otlpUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT, "metrics"), {
      method: "POST",
      headers: { "content-type": "application/json", ...parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS) },
      body,
      signal: AbortSignal.timeout(5000),
    })
      .then(async (res) => {
        await res.body?.cancel();
        if (res.ok) return;
        countExportFailure("metrics", batch.length);
        logger.warn("metrics_export_refused", { status: res.status });
      })
      .catch((err: unknown) => {
        countExportFailure("metrics", batch.length);
        logger.warn("metrics_export_failed", { error_class: err instanceof Error ? err.name : typeof err });
      }),
  );
  return true;
}
