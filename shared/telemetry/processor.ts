import { SpanKind, SpanStatusCode, type Context } from "@opentelemetry/api";
import type { TraceFlushableSpanProcessor } from "@microlabs/otel-cf-workers";
import type { ReadableSpan, Span } from "@opentelemetry/sdk-trace-base";
import { bufferSpan, sendBatch, takeDue } from "./buffer";
import { toOtlpSpan } from "./otlp";
import { requestTarget } from "./target";

/**
 * The span processor of every instrumented handler (one per isolate).
 *
 * otel-cf-workers' own `BatchTraceSpanProcessor` (1.0.0-rc.52) keeps a
 * `TraceState` per trace id for the life of the isolate: one more retained
 * object per request. Here a trace is held only from its first span until the
 * library flushes it at the end of its request (and its last span has ended);
 * then its spans are serialized into the isolate's export buffer as plain data
 * and the trace is forgotten. Traces whose request never finished (cancelled
 * by the client or the runtime) are swept after MAX_AGE_MS, and at most
 * MAX_TRACES are ever held, so the state is bounded by a constant whatever the
 * request count.
 *
 * Sampling: the head decision is the library's (the span's sampled flag, from
 * OTEL_TRACES_SAMPLER_ARG at the gateway, inherited downstream). An unsampled
 * trace costs only the library's span objects: nothing is serialized unless
 * one of its spans failed (status ERROR, or a server span answering 5xx), so
 * error traces are always kept (tail decision).
 */

interface TraceEntry {
  open: number;
  ended: ReadableSpan[];
  flushed: boolean;
  sampled: boolean;
  failed: boolean;
  startMs: number;
}

export const MAX_TRACES = 512;
export const MAX_AGE_MS = 60_000;
/** Above this many held traces, a new trace first sweeps the stale ones. */
const SWEEP_AT = 64;

const isSampled = (s: ReadableSpan | Span): boolean => (s.spanContext().traceFlags & 1) === 1; // TraceFlags.SAMPLED

function failed(span: ReadableSpan): boolean {
  if (span.status.code === SpanStatusCode.ERROR) return true;
  const status = span.attributes["http.response.status_code"];
  return span.kind === SpanKind.SERVER && typeof status === "number" && status >= 500;
}

function buffer(span: ReadableSpan): void {
  const service = String(span.resource.attributes["service.name"] ?? "unknown");
  bufferSpan(service, () => ({ ...span.resource.attributes }), toOtlpSpan(span));
}

export class RequestTraceProcessor implements TraceFlushableSpanProcessor {
  private readonly traces = new Map<string, TraceEntry>();
  /** Spans dropped because their trace was evicted while they were still open. */
  abandoned = 0;
  /** Spans ever started (a request with telemetry off must not add to it). */
  started = 0;

  /** Traces held now (the leak test reads it): bounded by MAX_TRACES, ~0 between requests. */
  get retained(): number {
    return this.traces.size;
  }

  onStart(span: Span, _parent: Context): void {
    this.started++;
    const id = span.spanContext().traceId;
    let t = this.traces.get(id);
    if (!t) {
      if (this.traces.size >= SWEEP_AT) this.sweep(Date.now());
      t = { open: 0, ended: [], flushed: false, sampled: isSampled(span), failed: false, startMs: Date.now() };
      this.traces.set(id, t);
    }
    t.open++;
  }

  onEnd(span: ReadableSpan): void {
    const id = span.spanContext().traceId;
    const t = this.traces.get(id);
    if (!t) {
      // Its trace was settled already (a span outliving its request's flush): decided on its own.
      if (isSampled(span) || failed(span)) buffer(span);
      return;
    }
    t.open--;
    t.ended.push(span);
    if (!t.failed && failed(span)) t.failed = true;
    if (t.flushed && t.open <= 0) this.settle(id, t);
  }

  /**
   * Called by the library in the request's own `waitUntil` once the handler
   * and its `waitUntil` work are done: the trace goes to the buffer, and the
   * buffer is POSTed by this request when an export is due.
   */
  async forceFlush(traceId?: string): Promise<void> {
    if (traceId === undefined) {
      for (const [id, t] of this.traces) this.settle(id, t);
    } else {
      const t = this.traces.get(traceId);
      if (t) {
        t.flushed = true;
        if (t.open <= 0) this.settle(traceId, t);
      }
    }
    const target = requestTarget.getStore();
    const batch = target && takeDue(target.policy);
    if (target && batch) await sendBatch(target, batch);
  }

  shutdown(): Promise<void> {
    return this.forceFlush();
  }

  private settle(id: string, t: TraceEntry): void {
    this.traces.delete(id);
    if (t.sampled || t.failed) for (const s of t.ended) buffer(s);
  }

  private sweep(nowMs: number): void {
    for (const [id, t] of this.traces) {
      if (this.traces.size < MAX_TRACES && nowMs - t.startMs < MAX_AGE_MS) break; // insertion order: the rest are younger
      this.abandoned += Math.max(t.open, 0);
      this.settle(id, t);
    }
  }
}

/** The isolate's processor: the library registers the first one it is given for the isolate's life. */
export const traceProcessor = new RequestTraceProcessor();
