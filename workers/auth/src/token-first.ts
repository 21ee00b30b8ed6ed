import type { Context } from "hono";
import { createOnError } from "../../../shared/errors";
import { applySecurityHeaders, finishRequest, incomingRequestId } from "../../../shared/http";
import { setLogLevel } from "../../../shared/logger";
import { PRINCIPAL_HEADER } from "../../../shared/principal";
import { allowedScopes, isScopeToken, parseScopeString, requestWithin } from "../../../shared/scopes";
import { SMART_REFUSAL_TEXT, smartRequestDecision } from "../../../shared/smart-scopes";
import type { RequestFacts } from "./bearer";
import { authenticateClient, oauthError, readOAuthParams } from "./client-auth";
import { authConfig } from "./config";
import { declaredWithin } from "./gateway/proxy";
import { activeRequests, gatewayRequestDone } from "./metrics";
import { tenantMoving } from "./tenant-move";
import { issueAccessToken } from "./tokens/issue";
import { loadKeySet } from "./tokens/keys";

type Fetch = (req: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>;

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/**
 * RFC 6749 4.4: the client credentials grant. The same function answers through the app's route (`POST
 * /oauth/token` and the original service's `POST /token`) and without the app (tokenFirst, below).
 */
export async function issueToken(r: RequestFacts, req: Request): Promise<Response> {
  // Taken before the client is read: a token is never dated after the tenant state it was issued on,
  // so a tenant cut-off written after that read refuses it (src/tenant-move.ts).
  const now = Math.floor(Date.now() / 1000);
  const params = await readOAuthParams(req);
  const client = await authenticateClient(r, params);
  if (client.tenant?.moving) throw tenantMoving();
  const grant = params.get("grant_type");
  if (!grant) throw oauthError(400, "invalid_request", "grant_type is required.");
  if (grant !== "client_credentials") {
    throw oauthError(400, "unsupported_grant_type", "Only the client_credentials grant is supported.");
  }
  const allowed = allowedScopes(client.roles, client.scopes);
  const requested = parseScopeString(params.get("scope"));
  for (const s of requested) {
    // SMART scopes (system/Patient.rs ...) are granted as asked when the platform scopes they need are allowed.
    const smart = smartRequestDecision(allowed, s);
    if (smart.ok) continue;
    if (smart.reason !== "not_smart") throw oauthError(400, "invalid_scope", SMART_REFUSAL_TEXT[smart.reason]);
    if (!isScopeToken(s) || !requestWithin(allowed, s)) {
      throw oauthError(400, "invalid_scope", "The requested scope is invalid, unknown, or exceeds what this client is allowed.");
    }
  }
  // RFC 6749 3.3: with no scope requested, the client's allowed scopes are the default.
  const scopes = requested.length > 0 ? requested : allowed.sort();
  if (scopes.length === 0) throw oauthError(400, "invalid_scope", "This client is allowed no scope.");
  const cfg = authConfig(r.env);
  const issued = await issueAccessToken(await loadKeySet(cfg), {
    issuer: cfg.JWT_ISSUER,
    audience: cfg.JWT_AUDIENCE,
    clientId: client.id,
    scopes,
    roles: client.roles,
    deviceId: client.deviceId,
    tenant: client.tenant,
    ttlSeconds: cfg.ACCESS_TOKEN_TTL_SECONDS,
    now,
  });
  const body = { access_token: issued.token, token_type: "Bearer", expires_in: issued.expiresIn, scope: scopes.join(" ") };
  return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json", ...NO_STORE } });
}

/** `POST /oauth/token` or `/token`, exactly: no query string. */
const TOKEN = /^https?:\/\/[^/?#]+(\/oauth\/token|\/token)$/;

/**
 * The token endpoint without the Hono app, as the gateway's proxy path (src/gateway/proxy.ts) and phi's reads
 * (workers/phi/src/read-first.ts) do: token requests are most of what a gateway serves that is not proxied. It
 * does what the app does for them, in one function: the request id and log level, the request metrics, the grant
 * itself (issueToken, the route's own code, refusals and their security events and failure records included),
 * errors answered by the app's own error handler, the security headers and the access line.
 *
 * Everything else goes to the app unchanged, before anything was read or recorded: another method or path, a
 * query string, a client-sent principal header, and a body without a declared length within the app's limit
 * (the app's body limit answers those).
 */
export function tokenFirst(next: Fetch, maxBodyBytes: number): Fetch {
  return (req, env, ctx) => {
    const m = req.method === "POST" ? TOKEN.exec(req.url) : null;
    const route = m?.[1];
    if (!route || req.headers.has(PRINCIPAL_HEADER) || !declaredWithin(req, maxBodyBytes)) return next(req, env, ctx);
    return token(route, req, env, ctx);
  };
}

/** The app's error handler, over the one member of Hono's Context it reads: the request id. */
const onError = createOnError();

async function token(route: string, req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  setLogLevel((env as { LOG_LEVEL?: string }).LOG_LEVEL);
  const start = performance.now();
  const requestId = incomingRequestId(req.headers.get("x-request-id"));
  activeRequests.add(1);
  let res: Response;
  try {
    res = await issueToken({ env, executionCtx: ctx, headers: req.headers, requestId, route }, req);
  } catch (err) {
    res = onError(err, { get: (key: string) => (key === "requestId" ? requestId : undefined) } as unknown as Context);
  }
  applySecurityHeaders(res.headers);
  res.headers.set("x-request-id", requestId);
  const seconds = (performance.now() - start) / 1000;
  gatewayRequestDone(seconds, route, "POST", res.status);
  finishRequest("auth", "info", env, ctx, { requestId, headers: req.headers, method: "POST", route, status: res.status, seconds, sub: undefined });
  return res;
}
