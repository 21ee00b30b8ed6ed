import { SpanImpl } from "@microlabs/otel-cf-workers";
import { SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Link, type SpanContext } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { flushDue, policyFrom, type ExportPolicy } from "./metrics-export";
import { sendBatch } from "./telemetry/buffer";
import { toOtlpSpan, type OtlpSpan } from "./telemetry/otlp";
import { exportTarget, type TelemetryEnv } from "./telemetry/target";
import { VERSION } from "./version";

/**
 * Spans where otel-cf-workers stops.
 *
 * 1. Inside a Durable Object woken by the hibernation API (`webSocketMessage`,
 *    `webSocketClose`, `alarm`) the library has no handler, no context and no
 *    exporter. `IsolateTracer` records those spans itself: each is its own
 *    trace, linked to the span of the request that opened the socket (W3C
 *    `traceparent` carried in the socket's attachment), buffered in the isolate
 *    and exported like the metrics: in `waitUntil`, at most every
 *    OTEL_METRIC_EXPORT_INTERVAL ms or when `maxPoints` spans are waiting.
 *    The same redaction as every other span applies before export.
 * 2. RPC calls on a Durable Object stub or a `WorkerEntrypoint` binding are not
 *    traced by the library (it wraps `fetch` only): `tracedRpc` wraps each
 *    method call in a CLIENT span of the calling request's trace, through
 *    `@opentelemetry/api` (a no-op where no tracer is registered).
 *
 * What can be lost: spans buffered in an isolate evicted before its next flush
 * (at most one interval's worth), and a batch the collector refuses.
 */

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A W3C `traceparent` header value as a remote span context (undefined when absent or malformed). */
export function parseTraceparent(value: string | null | undefined): SpanContext | undefined {
  const m = TRACEPARENT.exec(value ?? "");
  if (!m || /^0+$/.test(m[1] ?? "") || /^0+$/.test(m[2] ?? "")) return undefined;
  return { traceId: m[1] ?? "", spanId: m[2] ?? "", traceFlags: parseInt(m[3] ?? "0", 16), isRemote: true };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  let out = "";
  for (const x of b) out += HEX[x];
  return out;
}

export interface ManualSpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Spans this one follows from (e.g. the request that opened the socket). */
  links?: SpanContext[];
}

/** Marks a span failed with the error's class only (never its message, which may carry data). */
function markError(span: { setStatus(s: { code: SpanStatusCode }): unknown; setAttribute(k: string, v: string): unknown }, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.setAttribute("error.type", err instanceof Error ? err.name : typeof err);
}

/** Bound on spans kept while waiting for an export; the oldest are dropped beyond it. */
const MAX_BUFFERED = 2048;

export class IsolateTracer {
  private buffer: OtlpSpan[] = [];
  private lastFlush = Date.now();
  dropped = 0;

  constructor(private readonly service: string) {}

  /** Starts a root span; `end()` it when the work is done. */
  start(name: string, opts: ManualSpanOptions = {}): SpanImpl {
    const links: Link[] = (opts.links ?? []).map((context) => ({ context }));
    return new SpanImpl({
      name,
      spanKind: opts.kind ?? SpanKind.INTERNAL,
      attributes: opts.attributes ?? {},
      links,
      spanContext: { traceId: randomHex(16), spanId: randomHex(8), traceFlags: TraceFlags.SAMPLED },
      resource: this.resource(),
      onEnd: (ended) => {
        if (this.buffer.length >= MAX_BUFFERED) {
          this.buffer.shift();
          this.dropped++;
        }
        // Kept as plain OTLP data (redacted), not as the span object.
        this.buffer.push(toOtlpSpan(ended as unknown as ReadableSpan));
      },
    });
  }

  /** Runs `fn` inside a span; a thrown error marks the span and is rethrown. */
  run<T>(name: string, opts: ManualSpanOptions, fn: (span: SpanImpl) => T): T {
    const span = this.start(name, opts);
    try {
      return fn(span);
    } catch (err) {
      markError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Spans ended and not yet exported, as OTLP/JSON (for tests and diagnostics). */
  pending(): readonly OtlpSpan[] {
    return this.buffer;
  }

  /**
   * Exports the buffered spans in `waitUntil` when due (never on the caller's
   * critical path): the buffer is taken synchronously and POSTed with this
   * event's own fetch. Without an endpoint the buffer is simply dropped.
   */
  flush(env: TelemetryEnv, ctx: { waitUntil(p: Promise<unknown>): void }, policy: ExportPolicy = policyFrom(env), nowMs = Date.now()): boolean {
    if (!flushDue(policy, this.lastFlush, nowMs, this.buffer.length)) return false;
    this.lastFlush = nowMs;
    const spans = this.buffer;
    this.buffer = [];
    const target = exportTarget(env);
    if (!target) return false;
    ctx.waitUntil(sendBatch(target, { groups: [{ attrs: this.resource().attributes, spans: spans.map((s) => JSON.stringify(s)), logs: [] }], spans: spans.length, logs: 0 }));
    return true;
  }

  private cachedResource?: ReturnType<typeof resourceFromAttributes>;
  private resource() {
    this.cachedResource ??= resourceFromAttributes({
      "service.name": this.service,
      "service.namespace": "health-platform",
      "service.version": VERSION,
      "cloud.provider": "cloudflare",
      "cloud.platform": "cloudflare.workers",
      "telemetry.sdk.language": "js",
    });
    return this.cachedResource;
  }
}

const NOT_RPC = new Set<PropertyKey>(["fetch", "connect", "then", "id", "name", "dup", "constructor"]);

/**
 * Wraps an RPC stub (Durable Object stub or service binding entrypoint) so
 * each method call is a CLIENT span `<peer>.<method>` of the current trace.
 * Arguments and results are never recorded.
 */
export function tracedRpc<T extends object>(target: T, peer: string): T {
  const tracer = trace.getTracer("health-platform.rpc");
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop !== "string" || NOT_RPC.has(prop)) {
        const v = Reflect.get(t, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      }
      const value = (t as Record<string, unknown>)[prop];
      if (typeof value !== "function") return value;
      // Reflect.apply: on an RPC stub, `.apply` would itself be a remote call.
      const call = (...args: unknown[]): unknown => Reflect.apply(value as (...a: unknown[]) => unknown, t, args);
      return (...args: unknown[]) =>
        // A client span only as the child of a traced request (outside one there is no trace to join).
        !trace.getActiveSpan()
          ? call(...args)
          : tracer.startActiveSpan(
          `${peer}.${prop}`,
          { kind: SpanKind.CLIENT, attributes: { "rpc.system": "cloudflare_rpc", "rpc.service": peer, "rpc.method": prop } },
          async (span) => {
            try {
              return await call(...args);
            } catch (err) {
              markError(span, err);
              throw err;
            } finally {
              span.end();
            }
          },
        );
    },
  });
}
