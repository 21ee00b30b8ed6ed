import { AsyncLocalStorage } from "node:async_hooks";
import { createSampler, instrument, type ResolveConfigFn, type TraceConfig } from "@microlabs/otel-cf-workers";
import type { Sampler } from "@opentelemetry/sdk-trace-base";
import { ENV_IDENTITY } from "./config";
import { routeDiagnostics } from "./telemetry/diag";
import { traceProcessor } from "./telemetry/processor";
import { exportTarget, requestTarget, type TelemetryEnv } from "./telemetry/target";
import { VERSION } from "./version";

export { otlpUrl, parseOtlpHeaders, type TelemetryEnv } from "./telemetry/target";

const samplers = new Map<number, Sampler>();

/** One sampler per ratio and isolate (the library would build one per request from a ratio). */
function sampler(ratio: number): Sampler {
  let s = samplers.get(ratio);
  if (!s) {
    s = createSampler({ ratio, acceptRemote: true });
    samplers.set(ratio, s);
  }
  return s;
}

const configs = new Map<string, TraceConfig>();

/**
 * The otel-cf-workers configuration of one worker, resolved from its env (used only when exporting).
 * The same object for the same service and ratio: the library (patched, patches/otel-cf-workers.mjs)
 * parses each config object once per isolate instead of once per request.
 */
export function traceConfig(service: string): ResolveConfigFn<TelemetryEnv> {
  return (env): TraceConfig => {
    const ratio = exportTarget(env)?.ratio ?? 1;
    const key = `${service}\u0000${ratio}`;
    let config = configs.get(key);
    if (!config) {
      config = {
        service: { name: service, namespace: "health-platform", version: VERSION },
        spanProcessors: traceProcessor,
        // Head sampling at the root (the gateway); downstream workers follow the sampled flag of the traceparent.
        sampling: { headSampler: sampler(ratio) },
        // Trace context crosses our service bindings; the gateway does not trust a client's traceparent.
        handlers: { fetch: { acceptTraceContext: service !== "auth" } },
        fetch: { includeTraceContext: true },
      };
      configs.set(key, config);
    }
    return config;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** A fresh W3C `traceparent` (flags 00) from one call for random bytes: 16 for the trace id, 8 for the parent id. */
function freshTraceparent(): string {
  const b = crypto.getRandomValues(new Uint8Array(24));
  let trace = "";
  for (let i = 0; i < 16; i++) trace += HEX[b[i] ?? 0];
  let parent = "";
  for (let i = 16; i < 24; i++) parent += HEX[b[i] ?? 0];
  // Flags 00: nothing was recorded here, so a downstream worker that exports keeps only its error traces.
  return `00-${trace}-${parent}-00`;
}

/**
 * With telemetry off the gateway still names each request's trace: a fresh
 * `traceparent` (never the client's) for its log line and for the requests it
 * forwards, so logs and audit records downstream carry the gateway's trace id,
 * as when exporting. Held for the request's async scope only (rebuilding the
 * immutable incoming request to carry it cost ~9 % of the gateway's CPU).
 */
const ownTrace = new AsyncLocalStorage<string>();

/** The gateway's own `traceparent` of the running request when telemetry is off (undefined otherwise). */
export function ownTraceparent(): string | undefined {
  return ownTrace.getStore();
}

/**
 * Puts the gateway's own trace context on a request it forwards when telemetry
 * is off, replacing whatever the client sent. (With telemetry on the library
 * injects its client span's context into the service binding request.)
 */
export function forwardOwnTrace(headers: Headers): void {
  const tp = ownTrace.getStore();
  if (tp === undefined) return;
  headers.set("traceparent", tp);
  headers.delete("tracestate");
}

type Handler<E> = ExportedHandler<E>;

/**
 * Marks the env with its own identity (once; the env is the same object on
 * every request of an isolate). The tracing library hands the handler a new
 * proxy of the env on every request; config parsing reads ENV_IDENTITY through
 * it to key its cache on the env itself, or it would parse on every request.
 */
function markIdentity(env: object): void {
  if (Object.prototype.hasOwnProperty.call(env, ENV_IDENTITY)) return;
  try {
    // Configurable: proxies of the env (the library's, a copy's) must be able to report it as their own.
    Object.defineProperty(env, ENV_IDENTITY, { value: env, configurable: true });
  } catch {
    // A frozen env: config is then parsed per request, which is slower but correct.
  }
}

/**
 * `export default traced(handler, service)`: the handler instrumented by
 * otel-cf-workers when OTEL_EXPORTER_OTLP_ENDPOINT is set, and the raw handler
 * when it is not (no spans, no trace state, no export: off means off). The env
 * decides per request (it is the same on every request of a deployment).
 */
export function traced<E extends TelemetryEnv>(handler: Handler<E>, service: string): Handler<E> {
  routeDiagnostics();
  // instrument() replaces the methods of the object it is given: give it a copy, keep the raw ones.
  const inst = instrument({ ...handler }, traceConfig(service));
  const out: Handler<E> = {};
  const rawFetch = handler.fetch;
  const instFetch = inst.fetch;
  if (rawFetch && instFetch) {
    out.fetch = (req, env, ctx) => {
      const target = exportTarget(env);
      if (!target) return service === "auth" ? ownTrace.run(freshTraceparent(), () => rawFetch(req, env, ctx)) : rawFetch(req, env, ctx);
      markIdentity(env);
      return requestTarget.run(target, () => instFetch(req, env, ctx));
    };
  }
  const rawScheduled = handler.scheduled;
  const instScheduled = inst.scheduled;
  if (rawScheduled && instScheduled) {
    out.scheduled = (controller, env, ctx) => {
      const target = exportTarget(env);
      if (!target) return rawScheduled(controller, env, ctx);
      markIdentity(env);
      return requestTarget.run(target, () => instScheduled(controller, env, ctx));
    };
  }
  return out;
}
