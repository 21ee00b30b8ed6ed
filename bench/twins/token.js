// Limit twin of token issuance (POST /oauth/token, client_credentials): read the form, look the client up
// in D1 and check its secret hash as ours does, sign an RFC 9068 ES256 access token with jose. No lockout
// state (ours reads the client's and the address's failure windows in the same statement), no framework.
// TWIN_EDGE=1: + the per-request duties the platform's contract puts on every gateway request, with our own code
// (shared/http.ts, shared/metrics.ts): a request id, the security headers, the access line (JSON to the console),
// auth_active_requests, auth_request_duration_seconds and http_server_request_duration_seconds.
import { importJWK, SignJWT } from "jose";
import { applySecurityHeaders, finishRequest, incomingRequestId } from "@platform/shared/http";
import { setLogContext } from "@platform/shared/logger";
import { histogram, upDownCounter } from "@platform/shared/metrics";
import { authenticateClient, basic, json } from "./common.js";

setLogContext({ service: "auth" });
const requestDuration = histogram("auth_request_duration_seconds", "Gateway request duration", "s");
const activeRequests = upDownCounter("auth_active_requests", "Requests in flight in this isolate");
const ROUTE = "/oauth/token";

let signingKey;

export default {
  async fetch(request, env, ctx) {
    if (env.TWIN_EDGE !== "1") return issue(request, env);
    const start = performance.now();
    const requestId = incomingRequestId(request.headers.get("x-request-id"));
    activeRequests.add(1);
    const res = await issue(request, env);
    applySecurityHeaders(res.headers);
    res.headers.set("x-request-id", requestId);
    const seconds = (performance.now() - start) / 1000;
    activeRequests.add(-1);
    requestDuration.record(seconds, { endpoint: ROUTE, method: request.method, status: String(res.status) });
    finishRequest("auth", "info", env, ctx, { requestId, headers: request.headers, method: request.method, route: ROUTE, status: res.status, seconds, sub: res.status === 200 ? "bench" : undefined });
    return res;
  },
};

async function issue(request, env) {
  const params = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
  const client = await authenticateClient(env.DB, basic(request));
  if (!client) return json({ error: "invalid_client" }, 401);
  if (params.get("grant_type") !== "client_credentials") return json({ error: "unsupported_grant_type" }, 400);
  const allowed = JSON.parse(client.scopes);
  const scope = params.get("scope") ?? allowed.join(" ");
  if (!scope.split(" ").every((s) => allowed.includes(s))) return json({ error: "invalid_scope" }, 400);
  const jwk = JSON.parse(env.TWIN_PRIVATE_JWK);
  // The key itself is cached, not a promise (as ours): no request awaits another's import.
  signingKey ??= await importJWK({ ...jwk, alg: "ES256" }, "ES256");
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ client_id: client.id, scope, roles: JSON.parse(client.roles) })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: jwk.kid })
    .setIssuer(env.JWT_ISSUER)
    .setSubject(client.id)
    .setAudience(env.JWT_AUDIENCE)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 900)
    .setJti(crypto.randomUUID())
    .sign(signingKey);
  return json({ access_token: token, token_type: "Bearer", expires_in: 900, scope });
}
