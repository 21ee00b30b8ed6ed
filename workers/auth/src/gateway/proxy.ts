import { RegExpRouter } from "hono/router/reg-exp-router";
import { SmartRouter } from "hono/router/smart-router";
import { TrieRouter } from "hono/router/trie-router";
import { problemBody } from "../../../../shared/errors";
import { applySecurityHeaders, finishRequest, incomingRequestId } from "../../../../shared/http";
import { setLogLevel } from "../../../../shared/logger";
import { PRINCIPAL_HEADER, signPrincipal, type Principal } from "../../../../shared/principal";
import { bearerOf, checkGatewayToken, clientIpOf, grants } from "../bearer";
import { authConfig } from "../config";
import { activeRequests, gatewayRequestDone, tokensValidated } from "../metrics";
import { gatewayTable, principalOf, upstreamRequest, upstreamUnreachable, type GatewayRoute } from "./gateway";

type Fetch = (req: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>;

/** A table route and the path of it that matched (the route template of the access line and metrics). */
interface Matched {
  entry: GatewayRoute;
  path: string;
}

/**
 * The gateway's proxy path without the Hono app, for the requests that make up nearly all of its traffic:
 * an authenticated call of a table route whose token verifies and carries the route's scopes. It does what
 * the app does for them (request id, token and revocation view, scopes, signed principal, forwarding,
 * security headers, access line, metrics), in one function: per request no router context, no middleware
 * chain, and no copy of the response when the service already put the same headers on it.
 *
 * A body is forwarded as the stream it came in, as the app does, when its declared length is within the
 * app's limit. Everything else goes to the app unchanged, before anything was recorded: HEAD and OPTIONS, a
 * body without a Content-Length or over the limit (the app's body limit answers), public, body-scoped and
 * WebSocket routes, paths the app itself serves under a service prefix, a percent-encoded path (the router
 * decodes it), a client-sent principal header (a security event), and any token or scope failure (the app
 * gives the exact answer, its security event and its metric).
 */
export function proxyFirst(app: { fetch: Fetch }, ownPaths: Iterable<string>, maxBodyBytes: number): Fetch {
  const router = new SmartRouter<Matched>({ routers: [new RegExpRouter(), new TrieRouter()] });
  for (const entry of gatewayTable()) {
    if (entry.route.public || entry.route.scopesFromBody || entry.route.websocket) continue;
    for (const path of entry.paths) router.add(entry.route.method, path, { entry, path });
  }
  // The app's own routes under a service prefix (the SMART configuration under /v1/phi) stay the app's.
  const own = new Set(ownPaths);
  return (req, env, ctx) => {
    if (!PROXIED.has(req.method) || req.headers.has(PRINCIPAL_HEADER) || req.headers.has("upgrade")) return app.fetch(req, env, ctx);
    const token = bearerOf(req.headers.get("authorization"));
    if (!token || req.url.includes("%") || !declaredWithin(req, maxBodyBytes)) return app.fetch(req, env, ctx);
    const url = new URL(req.url);
    if (own.has(url.pathname)) return app.fetch(req, env, ctx);
    const matched = router.match(req.method, url.pathname)[0][0]?.[0];
    if (!matched) return app.fetch(req, env, ctx);
    return proxy(app, matched, token, url, req, env, ctx);
  };
}

/** A body the app's limit would pass without reading it: no body, or a declared length within the limit. */
export function declaredWithin(req: Request, maxBodyBytes: number): boolean {
  if (req.body === null) return true;
  if (req.headers.has("transfer-encoding")) return false;
  const declared = req.headers.get("content-length");
  return declared !== null && /^\d{1,10}$/.test(declared) && Number(declared) <= maxBodyBytes;
}

/** The methods of the route table (HEAD and OPTIONS are the app's). */
const PROXIED = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

async function proxy(app: { fetch: Fetch }, { entry, path: route }: Matched, token: string, url: URL, req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const start = performance.now();
  let allowed: { principal: Principal; signed: string } | undefined;
  try {
    allowed = await authorized(entry, token, req, env, ctx);
  } catch {
    allowed = undefined;
  }
  // A refusal, or a failure before anything was forwarded (a configuration error), is the app's to answer and log.
  if (!allowed) return app.fetch(req, env, ctx);
  setLogLevel((env as { LOG_LEVEL?: string }).LOG_LEVEL);
  tokensValidated.add(1, { result: "valid", scope: entry.route.scopes.join(" ") });
  activeRequests.add(1);
  const requestId = incomingRequestId(req.headers.get("x-request-id"));
  let res: Response;
  try {
    res = await env[entry.svc.binding].fetch(upstreamRequest(req, url, entry.svc, allowed.signed, requestId));
    // A service's app already put the security headers and this request id on its answer: it goes out as is.
    if (res.headers.get("x-request-id") !== requestId) res = withGatewayHeaders(new Response(res.body, res), requestId);
  } catch (err) {
    const failure = upstreamUnreachable(requestId, entry.svc, err);
    res = withGatewayHeaders(
      new Response(JSON.stringify(problemBody(failure, requestId)), { status: failure.status, headers: { "content-type": "application/problem+json" } }),
      requestId,
    );
  }
  const seconds = (performance.now() - start) / 1000;
  gatewayRequestDone(seconds, route, req.method, res.status);
  finishRequest("auth", "info", env, ctx, {
    requestId,
    headers: req.headers,
    method: req.method,
    route,
    status: res.status,
    seconds,
    sub: allowed.principal.sub,
  });
  return res;
}

/** The token verified against the revocation view, with the route's scopes, and the principal signed for it; undefined when refused. */
async function authorized(entry: GatewayRoute, token: string, req: Request, env: Env, ctx: ExecutionContext): Promise<{ principal: Principal; signed: string } | undefined> {
  const checked = await checkGatewayToken(env, ctx, token, Date.now());
  if (!checked.ok || !grants(checked.claims, entry.route.scopes)) return undefined;
  const principal = principalOf(checked.claims, clientIpOf(req.headers));
  return { principal, signed: await signPrincipal(authConfig(env).GATEWAY_HMAC_KEY, principal) };
}

function withGatewayHeaders(res: Response, requestId: string): Response {
  applySecurityHeaders(res.headers);
  res.headers.set("x-request-id", requestId);
  return res;
}
