import type { AttributeValue, HrTime } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { redactAttribute, redactPath } from "../redact";

/**
 * OTLP/JSON shapes (opentelemetry-proto, JSON mapping: ids in hex, times as
 * decimal strings of nanoseconds). Spans and log records are turned into these
 * plain objects the moment they are finished, so what an isolate keeps between
 * requests is data, never a span object, a closure or a promise of a request.
 */
export type OtlpValue =
  | { stringValue: string }
  | { boolValue: boolean }
  | { intValue: string }
  | { doubleValue: number }
  | { arrayValue: { values: OtlpValue[] } };
export interface OtlpKeyValue {
  key: string;
  value: OtlpValue;
}
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  events: { timeUnixNano: string; name: string; attributes: OtlpKeyValue[] }[];
  links: { traceId: string; spanId: string; attributes: OtlpKeyValue[] }[];
  status: { code: number };
}
export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  body: { stringValue: string };
  attributes: OtlpKeyValue[];
  traceId?: string;
  spanId?: string;
}
export interface OtlpResource {
  attributes: OtlpKeyValue[];
}

function value(v: AttributeValue | null): OtlpValue | undefined {
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (typeof v === "number") return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) {
    const values: OtlpValue[] = [];
    for (const x of v as (string | number | boolean | null | undefined)[]) {
      const o = x === undefined ? undefined : value(x);
      if (o) values.push(o);
    }
    return { arrayValue: { values } };
  }
  return undefined;
}

/**
 * Attributes the tracing library sets that a span does not export: the parts of `url.full` again
 * (scheme, host, path, query: url.full carries them, redacted the same way), the constant protocol name, the
 * binding name the span's name already says, and the caller's network (colo, country, ASN, TLS, RTT), which
 * describes a patient's connection and which no trace question of ours needs. Fewer attributes is less to
 * redact, serialize and send on every request.
 */
export const SPAN_NOISE = new Set([
  "url.scheme", "server.address", "url.path", "url.query", "network.protocol.name", "network.protocol.version",
  "http.accepts", "name", "net.colo", "net.country", "net.request_priority", "net.tls_cipher", "net.tls_version",
  "net.asn", "net.tcp_rtt",
]);

/** Attributes as OTLP key-values; `redact` may drop (undefined) or rewrite each one, and drops SPAN_NOISE. */
export function keyValues(attrs: Record<string, unknown>, redact = false): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  for (const key in attrs) {
    if (redact && SPAN_NOISE.has(key)) continue;
    const raw = redact ? redactAttribute(key, attrs[key]) : attrs[key];
    if (raw === undefined || raw === null) continue;
    const v = value(raw as AttributeValue);
    if (v) out.push({ key, value: v });
  }
  return out;
}

/** Nanoseconds since the epoch of an HrTime, as the decimal string OTLP/JSON uses. */
export function nanos(t: HrTime): string {
  const s = Math.trunc(t[0]);
  const ns = String(Math.trunc(t[1])).padStart(9, "0");
  return s === 0 ? String(Number(ns)) : `${s}${ns}`;
}

export function nanosOfMs(ms: number): string {
  return nanos([Math.floor(ms / 1000), (ms % 1000) * 1e6]);
}

/** Span names built from raw paths ("GET /v1/phi/Patient/123") lose the id too. */
export function redactSpanName(name: string): string {
  return name.replace(/\/[^\s]*/g, (p) => redactPath(p.split("?")[0] ?? ""));
}

/** One finished span as redacted OTLP/JSON (the same redaction as every other export). */
export function toOtlpSpan(span: ReadableSpan): OtlpSpan {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext?.spanId;
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    ...(parent ? { parentSpanId: parent } : {}),
    name: redactSpanName(span.name),
    // OTLP counts kinds from 1 (SPAN_KIND_INTERNAL); the API from 0.
    kind: span.kind + 1,
    startTimeUnixNano: nanos(span.startTime),
    endTimeUnixNano: nanos(span.endTime),
    attributes: keyValues(span.attributes, true),
    events: span.events.map((e) => ({ timeUnixNano: nanos(e.time), name: e.name, attributes: keyValues(e.attributes ?? {}, true) })),
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: keyValues(l.attributes ?? {}, true) })),
    status: { code: span.status.code },
  };
}

/** The resource of a span's service plus the deployment environment, as OTLP/JSON. */
export function toOtlpResource(attrs: Record<string, unknown>, environment: string): OtlpResource {
  return { attributes: keyValues({ ...attrs, "deployment.environment": environment, "deployment.environment.name": environment }) };
}

export const SCOPE = { name: "health-platform" };
const SCOPE_JSON = JSON.stringify(SCOPE);

/**
 * One ExportTraceServiceRequest holding every service's spans of a batch. Each span arrives as its
 * own OTLP/JSON text (serialized when it was buffered), so the batch is joined, not walked again.
 */
export function tracesBody(groups: { resource: OtlpResource; spans: readonly string[] }[]): string {
  const parts = groups.map((g) => `{"resource":${JSON.stringify(g.resource)},"scopeSpans":[{"scope":${SCOPE_JSON},"spans":[${g.spans.join(",")}]}]}`);
  return `{"resourceSpans":[${parts.join(",")}]}`;
}

/** One ExportLogsServiceRequest holding every service's log records of a batch (each one OTLP/JSON text). */
export function logsBody(groups: { resource: OtlpResource; logs: readonly string[] }[]): string {
  const parts = groups.map((g) => `{"resource":${JSON.stringify(g.resource)},"scopeLogs":[{"scope":${SCOPE_JSON},"logRecords":[${g.logs.join(",")}]}]}`);
  return `{"resourceLogs":[${parts.join(",")}]}`;
}
