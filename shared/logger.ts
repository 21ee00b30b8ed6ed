import { trace } from "@opentelemetry/api";
import { bufferLog } from "./telemetry/buffer";
import { nanosOfMs, keyValues } from "./telemetry/otlp";
import { requestTarget } from "./telemetry/target";
import { VERSION } from "./version";

/**
 * One JSON line per event, written with console.log so Workers Logs and
 * `wrangler tail` pick it up. Callers pass only safe fields: never PHI, card
 * data, secrets or tokens (see DESIGN.md, "Cross-cutting"). In a request that
 * exports telemetry (OTEL_EXPORTER_OTLP_ENDPOINT set) the same fields also go
 * to the collector's /v1/logs, with the active trace and span ids, in the
 * isolate's next trace/log batch (shared/telemetry/buffer.ts).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined | string[]>;

let base: LogFields = {};

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
// The lowest level written (plain data; LOG_LEVEL of the worker, set per request by createApp's middleware).
let threshold = RANK.info;
let thresholdSetting: string | undefined;

/**
 * Applies a worker's LOG_LEVEL ("debug", "info", "warn" or "error"; anything else, or unset, is "info").
 * Cheap on every request: the level is parsed only when the setting changes.
 */
export function setLogLevel(setting: string | undefined): void {
  if (setting === thresholdSetting) return;
  thresholdSetting = setting;
  threshold = setting !== undefined && Object.hasOwn(RANK, setting) ? RANK[setting as LogLevel] : RANK.info;
}

/** Whether a line at `level` would be written (callers skip building fields for nothing). */
export function logsAt(level: LogLevel): boolean {
  return RANK[level] >= threshold;
}

/** Sets the fields every line carries (service, environment). Called once per worker. */
export function setLogContext(fields: LogFields): void {
  base = { ...base, ...fields };
}

// OTLP SeverityNumber of each level (logs data model: DEBUG 5, INFO 9, WARN 13, ERROR 17).
const SEVERITY: Record<LogLevel, number> = { debug: 5, info: 9, warn: 13, error: 17 };

function toCollector(level: LogLevel, msg: string, fields: LogFields, nowMs: number): void {
  const service = typeof base.service === "string" ? base.service : "unknown";
  const ctx = trace.getActiveSpan()?.spanContext();
  const time = nanosOfMs(nowMs);
  bufferLog(service, () => ({ "service.name": service, "service.namespace": "health-platform", "service.version": VERSION }), {
    timeUnixNano: time,
    observedTimeUnixNano: time,
    severityNumber: SEVERITY[level],
    severityText: level.toUpperCase(),
    body: { stringValue: msg },
    attributes: keyValues({ ...base, ...fields }),
    ...(ctx ? { traceId: ctx.traceId, spanId: ctx.spanId } : {}),
  });
}

function write(level: LogLevel, msg: string, fields: LogFields): void {
  if (RANK[level] < threshold) return;
  const now = Date.now();
  const line = JSON.stringify({ time: new Date(now).toISOString(), level, msg, ...base, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
  if (requestTarget.getStore()) toCollector(level, msg, fields, now);
}

export const logger = {
  debug: (msg: string, fields: LogFields = {}) => write("debug", msg, fields),
  info: (msg: string, fields: LogFields = {}) => write("info", msg, fields),
  warn: (msg: string, fields: LogFields = {}) => write("warn", msg, fields),
  error: (msg: string, fields: LogFields = {}) => write("error", msg, fields),
};
