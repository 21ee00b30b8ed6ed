import { Hono, type Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { logger } from "../../../../shared/logger";
import { PRINCIPAL_HEADER, signPrincipal, type Principal } from "../../../../shared/principal";
import { PLATFORM_TENANT_ID } from "../../../../shared/tenants";
import { forwardOwnTrace } from "../../../../shared/telemetry";
import { parseScopeString } from "../../../../shared/scopes";
import { authenticateBearer, clientIp, requireBearer, requireScopes, securityEvent } from "../bearer";
import type { AccessClaims } from "../tokens/verify";
import { authConfig } from "../config";
import { fullPath, SERVICES, type Service } from "./route-table";
import type { RouteScope } from "./routes/types";

type Ctx = Context<{ Bindings: Env; Variables: AppVariables }>;

/**
 * On a public route only (no principal): the token service's issuer (JWT_ISSUER), so a worker's discovery
 * document (phi's CapabilityStatement) names the same token endpoint as the SMART and RFC 8414 metadata,
 * the one a `private_key_jwt` assertion's `aud` must name, whatever host the client called.
 */
export const ISSUER_HEADER = "x-oauth-issuer";

/** Headers a client must never be able to pass through to an internal worker. */
const STRIPPED = [PRINCIPAL_HEADER, "authorization", "cookie", "x-forwarded-host", "x-forwarded-proto", ISSUER_HEADER];

/**
 * The request a service receives: the client's method, path, query and headers, less the ones it may
 * never pass through, plus the gateway's own: the signed principal (none on public routes), the origin
 * the client called, the request id and (telemetry off) the gateway's trace context.
 */
export function upstreamRequest(
  raw: Request,
  url: URL,
  svc: Service,
  principal: string | null,
  requestId: string,
  body?: ArrayBuffer,
  issuer?: string,
): Request {
  // The service root is forwarded as the table names it, whichever spelling the client used (see gatewayTable).
  const pathname = url.pathname === `${svc.prefix}/` ? svc.prefix : url.pathname;
  const method = raw.method;
  // The new request copies the client's headers once; its own copy is then edited in place (a separate Headers
  // object first would be copied a second time by the constructor).
  const init: RequestInit = { method, headers: raw.headers, redirect: "manual" };
  if (method !== "GET" && method !== "HEAD") init.body = body ?? raw.body;
  const out = new Request(`https://${svc.binding.toLowerCase()}.internal${pathname}${url.search}`, init);
  const headers = out.headers;
  for (const h of STRIPPED) headers.delete(h);
  forwardOwnTrace(headers);
  if (principal) headers.set(PRINCIPAL_HEADER, principal);
  else if (issuer) headers.set(ISSUER_HEADER, issuer);
  // The origin clients called, so workers can write absolute links (FHIR Bundle links, fullUrl).
  headers.set("x-forwarded-host", url.host);
  headers.set("x-forwarded-proto", url.protocol.slice(0, -1));
  headers.set("x-request-id", requestId);
  return out;
}

/** The principal the gateway signs for a verified token (no D1 read: everything is in the token). */
export function principalOf(claims: AccessClaims, ip: string): Principal {
  return {
    sub: claims.sub,
    clientId: claims.client_id,
    roles: claims.roles,
    scopes: parseScopeString(claims.scope),
    tokenId: claims.jti,
    // A platform client (no claim) owns no data anywhere.
    tenantId: claims.tenant_id ?? PLATFORM_TENANT_ID,
    shard: claims.tenant_shard ?? 0,
    ...(claims.device_id ? { deviceId: claims.device_id } : {}),
    ip,
    iat: Math.floor(Date.now() / 1000),
  };
}

/** The service did not answer: logged with the request id, a 502 to the client. */
export function upstreamUnreachable(requestId: string, svc: Service, err: unknown): ApiError {
  logger.error("upstream_unreachable", {
    request_id: requestId,
    service: svc.binding,
    error_class: err instanceof Error ? err.name : typeof err,
  });
  return new ApiError(502, "bad_gateway", "The service behind this route did not answer.");
}

/**
 * `principal` is null on public routes: nothing is signed, the worker serves no record there.
 * `body`: the bytes already read for a body-scoped route, forwarded unchanged.
 */
async function forward(c: Ctx, svc: Service, principal: Principal | null, body?: ArrayBuffer): Promise<Response> {
  if (c.req.raw.headers.has(PRINCIPAL_HEADER)) securityEvent(c, "principal_header_spoofed", { clientId: principal?.clientId ?? null });
  const cfg = authConfig(c.env);
  const signed = principal ? await signPrincipal(cfg.GATEWAY_HMAC_KEY, principal) : null;
  const requestId = c.get("requestId");
  let res: Response;
  try {
    res = await c.env[svc.binding].fetch(upstreamRequest(c.req.raw, new URL(c.req.url), svc, signed, requestId, body, signed ? undefined : cfg.JWT_ISSUER));
  } catch (err) {
    throw upstreamUnreachable(requestId, svc, err);
  }
  // A WebSocket upgrade is handed back untouched (headers of a 101 cannot be rewritten).
  if (res.status === 101) return new Response(null, { status: 101, webSocket: res.webSocket, headers: res.headers });
  // Copy so the security-header middleware can set headers on it.
  return new Response(res.body, res);
}

/**
 * The token, then the route's scopes. A body-scoped route (a FHIR Bundle) is authenticated
 * before its body is read (within the app's body limit), then needs every scope the body does;
 * a body that is not JSON needs the route's own scopes, and the worker refuses it.
 */
async function authorize(c: Ctx, route: RouteScope): Promise<{ claims: AccessClaims; body?: ArrayBuffer }> {
  if (!route.scopesFromBody) return { claims: await requireBearer(c, route.scopes) };
  const claims = await authenticateBearer(c, route.scopes);
  const body = await c.req.arrayBuffer();
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    parsed = undefined;
  }
  return { claims: requireScopes(c, claims, route.scopesFromBody(parsed)), body };
}

/**
 * The gateway: one route per table entry. Each verifies the bearer token and
 * the route's scopes, then forwards with the verified principal attached.
 */
export function gatewayRoutes() {
  const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();
  for (const { svc, route, paths } of gatewayTable()) {
    if (route.public) {
      app.on(route.method, paths, (c) => forward(c, svc, null));
      continue;
    }
    app.on(route.method, paths, async (c) => {
      const { claims, body } = await authorize(c, route);
      const principal = principalOf(claims, clientIp(c));
      c.set("principal", principal);
      return forward(c, svc, principal, body);
    });
  }
  return app;
}

/** One row of the gateway's routing: a table route and the client paths it answers. */
export interface GatewayRoute {
  svc: Service;
  route: RouteScope;
  paths: string[];
}

/** Every table route in the order the gateway registers them (the proxy path matches in the same order). */
export function gatewayTable(): GatewayRoute[] {
  const out: GatewayRoute[] = [];
  for (const svc of SERVICES) {
    // Static segments before parameters so `/refunds/:id` never loses to `/:id`.
    const routes = [...svc.routes].sort((a, b) => (a.path.match(/:/g)?.length ?? 0) - (b.path.match(/:/g)?.length ?? 0));
    for (const route of routes) {
      // The FHIR base answers with a trailing slash too: FHIR clients join "" to their base URL that way
      // (fhir-kit-client posts a transaction or batch Bundle to `[base]/`). Only there: elsewhere `/v1/payments/.`
      // would normalize to a list instead of the 404 of a malformed id.
      const paths = route.path === "/" && svc.binding === "PHI" ? [svc.prefix, `${svc.prefix}/`] : [fullPath(svc.prefix, route.path)];
      out.push({ svc, route, paths });
    }
  }
  return out;
}
