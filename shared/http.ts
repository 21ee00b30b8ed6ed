import { isSpanContextValid, trace } from "@opentelemetry/api";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId, type RequestIdVariables } from "hono/request-id";
import { routePath } from "hono/route";
import { secureHeaders } from "hono/secure-headers";
import { ApiError, createNotFound, createOnError, renderProblem, type ErrorRenderer } from "./errors";
import { logger, setLogContext } from "./logger";
import { histogram } from "./metrics";
import { scheduleMetricsFlush } from "./metrics-export";
import { ownTraceparent, type TelemetryEnv } from "./telemetry";
import type { PrincipalVariables } from "./principal";

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Strict headers for an API that never serves active content (OWASP Secure Headers). */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * A route that serves an HTML page (the gateway's /docs) replaces API_CSP with its own,
 * narrower-than-a-browser-default policy by setting this variable; every other response keeps API_CSP.
 */
export type PageCspVariables = { pageCsp?: string };

export function securityHeaders(): MiddlewareHandler {
  const inner = secureHeaders({
    strictTransportSecurity: "max-age=63072000; includeSubDomains; preload",
    xFrameOptions: "DENY",
    referrerPolicy: "no-referrer",
    xContentTypeOptions: "nosniff",
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
    },
    crossOriginResourcePolicy: "same-origin",
    crossOriginOpenerPolicy: "same-origin",
    xXssProtection: "0",
  });
  return async (c, next) => {
    await inner(c, next);
    const page = (c.var as PageCspVariables).pageCsp;
    if (page) c.res.headers.set("content-security-policy", page);
    // Responses are per caller and may hold tokens or PHI: never cached unless a route says so.
    if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  };
}

const requestDuration = histogram("http_server_request_duration_seconds", "Request duration by route template", "s");

/**
 * One JSON line per request (route template, never the raw path; status;
 * duration; principal `sub`), the request-duration histogram, and a metrics
 * export scheduled after the response when one is due.
 */
export function requestLog(service: string): MiddlewareHandler<{ Variables: RequestIdVariables & Partial<PrincipalVariables> }> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    const status = c.res.status;
    const route = routeTemplate(c);
    const seconds = (performance.now() - start) / 1000;
    logger[status >= 500 ? "error" : "info"]("request", {
      request_id: c.var.requestId,
      trace_id: activeTraceId(c),
      method: c.req.method,
      route,
      status,
      duration_ms: Math.round(seconds * 100_000) / 100,
      sub: c.var.principal?.sub,
    });
    requestDuration.record(seconds, { route, method: c.req.method, status: String(status) });
    let ctx: Context["executionCtx"] | undefined;
    try {
      ctx = c.executionCtx;
    } catch {
      ctx = undefined; // app.request() in unit tests has no execution context
    }
    if (ctx) scheduleMetricsFlush(c.env as TelemetryEnv, ctx, service);
  };
}

/**
 * The trace this request belongs to: the active span's (the one the gateway
 * starts, or the one an internal worker continues), so every worker's log line
 * names the trace its spans and audit records carry. At the gateway a client's
 * own `traceparent` is never trusted; the header is the fallback only where
 * no span is active.
 */
export function activeTraceId(c: Context): string | undefined {
  const active = trace.getActiveSpan()?.spanContext();
  if (active && isSpanContextValid(active)) return active.traceId;
  return (ownTraceparent() ?? c.req.header("traceparent"))?.split("-")[1];
}

/** The matched route's template (`/Patient/:id`), or a placeholder when nothing matched. */
export function routeTemplate(c: Context): string {
  const p = routePath(c, -1);
  return !p || p.endsWith("*") ? "unmatched" : p;
}

/** zod-openapi validation hook: every invalid input becomes the same 400 shape. */
export function validationHook(result: { success: boolean; error?: unknown; target?: string }): void {
  if (result.success) return;
  const issues = (result.error as { issues?: { path: PropertyKey[]; message: string; code?: string }[] })?.issues ?? [];
  throw new ApiError(400, "invalid_request", "The request is not valid.", {
    extra: {
      errors: issues.slice(0, 20).map((i) => ({
        location: result.target,
        path: i.path.map(String).join("."),
        code: i.code,
        message: i.message,
      })),
    },
  });
}

export type AppVariables = RequestIdVariables & PrincipalVariables;

export interface CreateAppOptions {
  /** Worker name for logs. */
  service: string;
  render?: ErrorRenderer;
  maxBodyBytes?: number;
}

/**
 * The Hono app every worker starts from: request id, one log line per request,
 * security headers, body limit, 405 for known paths with the wrong method,
 * problem+json for every error.
 */
export function createApp<E extends object>(opts: CreateAppOptions) {
  setLogContext({ service: opts.service });
  const render = opts.render ?? renderProblem;
  const app = new OpenAPIHono<{ Bindings: E; Variables: AppVariables }>({ defaultHook: validationHook });
  app.use(requestId({ generator: () => crypto.randomUUID() }));
  // Hono adds the header only to responses it builds; forwarded and error responses need it too.
  app.use(async (c, next) => {
    await next();
    c.res.headers.set("x-request-id", c.var.requestId);
  });
  app.use(requestLog(opts.service));
  app.use(securityHeaders());
  app.use(
    bodyLimit({
      maxSize: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(413, "payload_too_large", "The request body is too large.");
      },
    }),
  );
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) =>
        render(
          new ApiError(405, "method_not_allowed", `Allowed: ${methods.join(", ")}.`, {
            headers: { allow: methods.join(", ") },
          }),
          c,
        ),
    }),
  );
  app.onError(createOnError(render));
  app.notFound(createNotFound(render));
  return app;
}
