import { diag, DiagLogLevel, type DiagLogger } from "@opentelemetry/api";
import { counter } from "../metrics";
import { logger } from "../logger";

const diagnostics = counter("otel_diagnostics_total", "OpenTelemetry's own warnings and errors, by level");

/** The first string argument only: OpenTelemetry's messages may carry objects (errors with URLs, payloads). */
function text(msg: string): string {
  return msg.slice(0, 200);
}

/**
 * OpenTelemetry's own diagnostics as our JSON lines (one object a line, the
 * class of message only), so a log pipeline that parses lines never meets
 * plain text from the library.
 */
const jsonDiag: DiagLogger = {
  error: (msg) => {
    diagnostics.add(1, { level: "error" });
    logger.warn("otel_diagnostic", { otel_level: "error", detail: text(msg) });
  },
  warn: (msg) => {
    diagnostics.add(1, { level: "warn" });
    logger.warn("otel_diagnostic", { otel_level: "warn", detail: text(msg) });
  },
  info: () => undefined,
  debug: () => undefined,
  verbose: () => undefined,
};

let routed = false;

/** Routes the OpenTelemetry API's diagnostics through our logger (once per isolate). */
export function routeDiagnostics(): void {
  if (routed) return;
  routed = true;
  diag.setLogger(jsonDiag, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}
