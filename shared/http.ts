import { isSpanContextValid, trace } from "@opentelemetry/api";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { RequestIdVariables } from "hono/request-id";
import { routePath } from "hono/route";
import { TrieRouter } from "hono/router/trie-router";
import { issueForClient, type ZodIssueLike } from "./issues";
import { ApiError, createNotFound, createOnError, renderProblem, type ErrorRenderer } from "./errors";
import { logger, logsAt, setLogContext, setLogLevel, type LogLevel } from "./logger";
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

/**
 * The security headers of every response (OWASP Secure Headers; the values Hono's `secureHeaders` sets with
 * these options, as one static list: nothing is computed per request). `content-security-policy` is API_CSP
 * unless a page route sets its own.
 */
export const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ["cross-origin-resource-policy", "same-origin"],
  ["cross-origin-opener-policy", "same-origin"],
  ["origin-agent-cluster", "?1"],
  ["referrer-policy", "no-referrer"],
  ["strict-transport-security", "max-age=63072000; includeSubDomains; preload"],
  ["x-content-type-options", "nosniff"],
  ["x-dns-prefetch-control", "off"],
  ["x-download-options", "noopen"],
  ["x-frame-options", "DENY"],
  ["x-permitted-cross-domain-policies", "none"],
  ["x-xss-protection", "0"],
  ["content-security-policy", API_CSP],
];

/** Puts the security headers on a response's (mutable) headers; `no-store` unless it says how to cache. */
export function applySecurityHeaders(headers: Headers, pageCsp?: string): void {
  for (const [name, value] of SECURITY_HEADERS) headers.set(name, value);
  if (pageCsp) headers.set("content-security-policy", pageCsp);
  headers.delete("x-powered-by");
  // Responses are per caller and may hold tokens or PHI: never cached unless a route says so.
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
}

/** The request id a client (or the gateway) sent, when it is safe to reuse: as Hono's `requestId` decides. */
export function incomingRequestId(header: string | null | undefined): string {
  return header && header.length <= 255 && !/[^\w\-=]/.test(header) ? header : crypto.randomUUID();
}

const requestDuration = histogram("http_server_request_duration_seconds", "Request duration by route template", "s");

/**
 * The edge of every request in one middleware (one layer instead of four): the request id (the caller's
 * X-Request-Id when safe to reuse, the gateway's behind it, else a new one), and after the handler the
 * security headers and the request id on whatever answers (forwarded and error responses too), then the
 * access line, the request-duration histogram and a metrics export when one is due (`finishRequest`).
 * `level` is the access line's level for a request that did not fail (5xx are always `error`): the
 * gateway writes its access lines at `info`; the workers behind it at `debug`, since the gateway's line
 * already names every request (its request id, route, status and duration).
 */
export function requestEdge(
  service: string,
  level: LogLevel = "info",
  limitBody?: MiddlewareHandler,
  hooks?: RequestHooks,
  onError?: (err: Error, c: Context) => Response | Promise<Response>,
): MiddlewareHandler<{ Variables: RequestIdVariables & Partial<PrincipalVariables> & PageCspVariables }> {
  return async (c, next) => {
    setLogLevel((c.env as { LOG_LEVEL?: string } | undefined)?.LOG_LEVEL);
    const start = performance.now();
    const id = incomingRequestId(c.req.header("x-request-id"));
    c.set("requestId", id);
    hooks?.start();
    // The body limit runs here, not as a middleware layer of its own (one layer less on every request): only a
    // request with a body pays for it, and its refusal is an answer like any other (headers, line, metrics).
    if (limitBody && c.req.raw.body) {
      try {
        const refused = await limitBody(c, next);
        if (refused instanceof Response) c.res = refused;
      } catch (err) {
        // Reading the body failed (the client went away mid-stream): answered here like any error of a layer.
        if (!(err instanceof Error) || !onError) throw err;
        c.error = err;
        c.res = await onError(err, c);
      }
    } else {
      await next();
    }
    const headers = c.res.headers;
    applySecurityHeaders(headers, c.get("pageCsp"));
    headers.set("x-request-id", id);
    let ctx: Context["executionCtx"] | undefined;
    try {
      ctx = c.executionCtx;
    } catch {
      ctx = undefined; // app.request() in unit tests has no execution context
    }
    const finished: FinishedRequest = {
      requestId: id,
      headers: c.req.raw.headers,
      method: c.req.method,
      route: routeTemplate(c),
      status: c.res.status,
      seconds: (performance.now() - start) / 1000,
      sub: c.get("principal")?.sub,
    };
    hooks?.done(finished);
    finishRequest(service, level, c.env as TelemetryEnv, ctx, finished);
  };
}

/** A worker's own bookkeeping at the start and the end of every request (its metrics), run by the edge middleware. */
export interface RequestHooks {
  start(): void;
  done(r: FinishedRequest): void;
}

/** What the access line and the request-duration histogram say about one finished request. */
export interface FinishedRequest {
  requestId: string;
  /** The request's headers: its trace id is looked up only when the line is written. */
  headers: Headers;
  method: string;
  /** The route template, never the raw path. */
  route: string;
  status: number;
  seconds: number;
  sub: string | undefined;
}

/**
 * The end of every request, with or without the Hono app (the gateway's proxy path):
 * its access line at `level` (`error` for a 5xx), the duration histogram, and a metrics export when one is due.
 */
export function finishRequest(
  service: string,
  level: LogLevel,
  env: TelemetryEnv,
  ctx: { waitUntil(p: Promise<unknown>): void } | undefined,
  r: FinishedRequest,
): void {
  const lineLevel: LogLevel = r.status >= 500 ? "error" : level;
  if (logsAt(lineLevel)) {
    logger[lineLevel]("request", {
      request_id: r.requestId,
      trace_id: currentTraceId(r.headers),
      method: r.method,
      route: r.route,
      status: r.status,
      duration_ms: Math.round(r.seconds * 100_000) / 100,
      sub: r.sub,
    });
  }
  requestDuration.record(r.seconds, { route: r.route, method: r.method, status: String(r.status) });
  if (ctx) scheduleMetricsFlush(env, ctx, service);
}

/**
 * The trace this request belongs to: the active span's (the one the gateway
 * starts, or the one an internal worker continues), so every worker's log line
 * names the trace its spans and audit records carry. At the gateway a client's
 * own `traceparent` is never trusted; the header is the fallback only where
 * no span is active.
 */
export function activeTraceId(c: Context): string | undefined {
  return currentTraceId(c.req.raw.headers);
}

/** `activeTraceId` from a request's headers (for code that runs without a Hono context). */
export function currentTraceId(headers: Headers): string | undefined {
  const active = trace.getActiveSpan()?.spanContext();
  if (active && isSpanContextValid(active)) return active.traceId;
  return (ownTraceparent() ?? headers.get("traceparent") ?? undefined)?.split("-")[1];
}

/** The matched route's template (`/Patient/:id`), or a placeholder when nothing matched. */
export function routeTemplate(c: Context): string {
  const p = routePath(c, -1);
  return !p || p.endsWith("*") ? "unmatched" : p;
}

/** zod-openapi validation hook: every invalid input becomes the same 400 shape. */
export function validationHook(result: { success: boolean; error?: unknown; target?: string }): void {
  if (result.success) return;
  const issues = (result.error as { issues?: ZodIssueLike[] })?.issues ?? [];
  throw new ApiError(400, "invalid_request", "The request is not valid.", {
    extra: { errors: issues.slice(0, 20).map((i) => issueForClient(i, result.target)) },
  });
}

export type AppVariables = RequestIdVariables & PrincipalVariables;

export interface CreateAppOptions {
  /** Worker name for logs. */
  service: string;
  /**
   * Level of the per-request access line when the request did not fail: "info" at the edge (the gateway),
   * "debug" (the default) behind it, where the gateway's line already covers the request.
   */
  accessLog?: LogLevel;
  render?: ErrorRenderer;
  maxBodyBytes?: number;
  /** The worker's own per-request bookkeeping, in the edge middleware rather than a layer of its own. */
  hooks?: RequestHooks;
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
  const limitBody = bodyLimit({
    maxSize: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    onError: (c) => render(new ApiError(413, "payload_too_large", "The request body is too large."), c),
  });
  const onError = createOnError(render);
  app.use(requestEdge(opts.service, opts.accessLog ?? "debug", limitBody, opts.hooks, onError));
  app.onError(onError);
  // 405 for a known path with the wrong method, decided where nothing matched (not a middleware on every request).
  const notFound = createNotFound(render);
  const allowedFor = allowedMethods(() => app.routes);
  app.notFound((c) => {
    const allowed = allowedFor(c.req.path);
    if (allowed.length === 0 || allowed.includes(c.req.method)) return notFound(c);
    return render(new ApiError(405, "method_not_allowed", `Allowed: ${allowed.join(", ")}.`, { headers: { allow: allowed.join(", ") } }), c);
  });
  return app;
}

/**
 * The methods an app serves at a path (GET implies HEAD), from its route table; built on first use (the table is
 * complete once the module has loaded) and kept as plain data. Middleware (`ALL`) does not make a path known.
 */
function allowedMethods(routes: () => readonly { method: string; path: string }[]): (path: string) => string[] {
  let router: TrieRouter<string[]> | undefined;
  return (path) => {
    if (!router) {
      const byPath = new Map<string, Set<string>>();
      for (const r of routes()) {
        if (r.method === "ALL" || r.method === "HEAD") continue;
        const methods = byPath.get(r.path) ?? new Set<string>();
        methods.add(r.method);
        if (r.method === "GET") methods.add("HEAD");
        byPath.set(r.path, methods);
      }
      router = new TrieRouter<string[]>();
      for (const [p, methods] of byPath) router.add("ALL", p, [...methods]);
    }
    const out = new Set<string>();
    for (const [methods] of router.match("ALL", path)[0]) for (const m of methods) out.add(m);
    return [...out];
  };
}
