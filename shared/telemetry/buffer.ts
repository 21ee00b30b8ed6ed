import { __unwrappedFetch } from "@microlabs/otel-cf-workers";
import { counter } from "../metrics";
import { logsBody, toOtlpResource, tracesBody, type OtlpLogRecord, type OtlpSpan } from "./otlp";
import { otlpUrl, type BatchPolicy, type ExportTarget } from "./target";

/**
 * The isolate's export buffer: finished spans and log records as plain
 * OTLP/JSON text (one string each: a short-lived object graph per span
 * would otherwise live until the next export and burden the garbage
 * collector), grouped by the service that made them.
 *
 * Export without cross-request promises: a request that finds an export due
 * takes the whole buffer synchronously (the arrays are swapped for empty ones)
 * and POSTs it with its own `fetch`, inside its own `waitUntil`. No request
 * waits for, resolves or chains onto a promise another request made; a request
 * that is cancelled loses only the batch it had taken (counted as a failure).
 *
 * What can be lost: a batch the collector refuses or that fails in transit
 * (dropped after one attempt and counted, so a collector that is down never
 * slows requests nor grows memory), anything beyond MAX_BUFFERED, and at most
 * one interval of data when the isolate is evicted.
 */

type ServiceAttrs = Record<string, unknown>;

interface Group {
  attrs: ServiceAttrs;
  /** Each one OTLP/JSON span. */
  spans: string[];
  /** Each one OTLP/JSON log record. */
  logs: string[];
}

/** Bound on spans (and on log records) waiting for an export; newer ones are dropped and counted beyond it. */
export const MAX_BUFFERED = 4096;

let groups = new Map<string, Group>();
let spanCount = 0;
let logCount = 0;
let lastTake = 0;

/** Plain counters for tests and diagnostics (the metrics below carry them to the collector). */
export const exportStats = { spans: 0, logs: 0, tracePosts: 0, logPosts: 0, failures: 0, droppedSpans: 0, droppedLogs: 0 };

const exportFailures = counter("otlp_export_failures_total", "OTLP exports that failed or were refused (the batch is dropped), by signal");
const dropped = counter("otlp_dropped_total", "Spans and log records dropped before export (buffer full or export failed), by signal");

function group(service: string, attrs: () => ServiceAttrs): Group {
  let g = groups.get(service);
  if (!g) {
    g = { attrs: attrs(), spans: [], logs: [] };
    groups.set(service, g);
  }
  return g;
}

export function bufferSpan(service: string, attrs: () => ServiceAttrs, span: OtlpSpan): void {
  if (spanCount >= MAX_BUFFERED) {
    exportStats.droppedSpans++;
    dropped.add(1, { signal: "traces" });
    return;
  }
  group(`t:${service}`, attrs).spans.push(JSON.stringify(span));
  spanCount++;
  exportStats.spans++;
}

export function bufferLog(service: string, attrs: () => ServiceAttrs, record: OtlpLogRecord): void {
  if (logCount >= MAX_BUFFERED) {
    exportStats.droppedLogs++;
    dropped.add(1, { signal: "logs" });
    return;
  }
  group(`l:${service}`, attrs).logs.push(JSON.stringify(record));
  logCount++;
  exportStats.logs++;
}

/** Spans and log records waiting (for tests and diagnostics). */
export function buffered(): { spans: number; logs: number } {
  return { spans: spanCount, logs: logCount };
}

export interface Batch {
  groups: Group[];
  spans: number;
  logs: number;
}

/** Pure: is an export due? */
export function exportDue(policy: BatchPolicy, lastMs: number, nowMs: number, spans: number, logs: number): boolean {
  if (spans + logs === 0) return false;
  return nowMs - lastMs >= policy.delayMs || spans >= policy.maxBatch || logs >= policy.maxBatch;
}

/** Takes the buffer when an export is due (synchronously: the caller owns the batch from here). */
export function takeDue(policy: BatchPolicy, nowMs = Date.now()): Batch | undefined {
  if (!exportDue(policy, lastTake, nowMs, spanCount, logCount)) return undefined;
  const batch = { groups: [...groups.values()], spans: spanCount, logs: logCount };
  groups = new Map();
  spanCount = 0;
  logCount = 0;
  lastTake = nowMs;
  return batch;
}

async function post(target: ExportTarget, signal: "traces" | "logs", body: string, items: number): Promise<void> {
  if (signal === "traces") exportStats.tracePosts++;
  else exportStats.logPosts++;
  try {
    // The library's unwrapped fetch: an export is not a span of the request that sends it.
    const res = await __unwrappedFetch(otlpUrl(target.endpoint, signal), {
      method: "POST",
      headers: { "content-type": "application/json", ...target.headers },
      body,
      signal: AbortSignal.timeout(5000),
    });
    await res.body?.cancel();
    if (res.ok) return;
  } catch {
    // A collector that is down, slow or unreachable: the batch is dropped and counted below.
  }
  countExportFailure(signal, items);
}

/** A failed or refused export of `items` (the batch is dropped): counted, never retried. */
export function countExportFailure(signal: "traces" | "logs" | "metrics", items: number): void {
  exportStats.failures++;
  exportFailures.add(1, { signal });
  dropped.add(items, { signal });
}

/** POSTs a taken batch (one trace POST, one log POST). Never rejects. */
export async function sendBatch(target: ExportTarget, batch: Batch): Promise<void> {
  const withSpans = batch.groups.filter((g) => g.spans.length > 0);
  const withLogs = batch.groups.filter((g) => g.logs.length > 0);
  const sends: Promise<void>[] = [];
  if (withSpans.length > 0) sends.push(post(target, "traces", tracesBody(withSpans.map((g) => ({ resource: toOtlpResource(g.attrs, target.environment), spans: g.spans }))), batch.spans));
  if (withLogs.length > 0) sends.push(post(target, "logs", logsBody(withLogs.map((g) => ({ resource: toOtlpResource(g.attrs, target.environment), logs: g.logs }))), batch.logs));
  await Promise.all(sends);
}

/** Exports what is due in the caller's own `waitUntil`; true when a batch was taken. */
export function flushDue(target: ExportTarget, ctx: { waitUntil(p: Promise<unknown>): void }, nowMs = Date.now()): boolean {
  const batch = takeDue(target.policy, nowMs);
  if (!batch) return false;
  ctx.waitUntil(sendBatch(target, batch));
  return true;
}
