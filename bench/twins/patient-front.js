// Limit twin of the authenticated Patient read, front half (the gateway's essential work): verify the same
// ES256 access token with jose against the same public key, check the scope, forward over a service binding.
// Variants, by binding, each adding one piece of ours (for "what costs what"):
//   TWIN_REVOCATION=1  the revocation / client-state query our gateway makes (one D1 query on the auth database)
//   TWIN_PRINCIPAL=1   a signed principal header (HMAC-SHA256 over its JSON), as ours attaches and phi verifies
//   TWIN_BACK=ours     forward to our phi worker instead of the back twin (our principal, with the tenant and shard
//                      of the token, and phi's path): what our phi costs behind the twin's front
//   TWIN_EDGE=1        the per-request duties the platform's contract puts on every gateway request, with our own
//                      code (shared/http.ts, shared/metrics.ts): a request id forwarded to the back, the access
//                      line (JSON to the console), auth_tokens_validated_total, auth_active_requests,
//                      auth_request_duration_seconds and http_server_request_duration_seconds
import { finishRequest, incomingRequestId } from "@platform/shared/http";
import { setLogContext } from "@platform/shared/logger";
import { counter, histogram, upDownCounter } from "@platform/shared/metrics";
import { b64u, bearer, tokenStillValid, utf8, verifyToken } from "./common.js";

setLogContext({ service: "auth" });
const tokensValidated = counter("auth_tokens_validated_total", "Access tokens checked by the gateway");
const requestDuration = histogram("auth_request_duration_seconds", "Gateway request duration", "s");
const activeRequests = upDownCounter("auth_active_requests", "Requests in flight in this isolate");
const ROUTE = "/v1/phi/Patient/:id";

let hmacKey;

export default {
  async fetch(request, env, ctx) {
    if (env.TWIN_EDGE !== "1") return read(request, env);
    const start = performance.now();
    const requestId = incomingRequestId(request.headers.get("x-request-id"));
    activeRequests.add(1);
    const res = await read(request, env, requestId);
    const seconds = (performance.now() - start) / 1000;
    activeRequests.add(-1);
    if (res.status === 200) tokensValidated.add(1, { result: "valid", scope: "phi:read" });
    requestDuration.record(seconds, { endpoint: ROUTE, method: request.method, status: String(res.status) });
    finishRequest("auth", "info", env, ctx, { requestId, headers: request.headers, method: request.method, route: ROUTE, status: res.status, seconds, sub: res.status === 200 ? "bench" : undefined });
    return res;
  },
};

async function read(request, env, requestId) {
  const claims = await verifyToken(env, bearer(request));
  if (!claims) return new Response(null, { status: 401 });
  if (env.TWIN_REVOCATION === "1" && !(await tokenStillValid(env.AUTH_DB, claims))) return new Response(null, { status: 401 });
  if (!String(claims.scope).split(" ").includes("phi:read")) return new Response(null, { status: 403 });
  const id = new URL(request.url).pathname.split("/").pop();
  const headers = { "x-sub": claims.sub };
  if (requestId) headers["x-request-id"] = requestId;
  if (env.TWIN_PRINCIPAL === "1") {
    // The key itself is cached, not a promise (as ours): no request awaits another's import.
    hmacKey ??= await crypto.subtle.importKey("raw", utf8(env.GATEWAY_HMAC_KEY), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const principal = { sub: claims.sub, clientId: claims.client_id, roles: claims.roles, scopes: String(claims.scope).split(" "), tokenId: claims.jti, ip: "unknown", iat: Math.floor(Date.now() / 1000) };
    if (env.TWIN_BACK === "ours") Object.assign(principal, { tenantId: claims.tenant_id, shard: claims.tenant_shard ?? 0 });
    const payload = b64u(utf8(JSON.stringify(principal)));
    headers["x-gateway-principal"] = `${payload}.${b64u(await crypto.subtle.sign("HMAC", hmacKey, utf8(payload)))}`;
  }
  if (env.TWIN_BACK === "ours") return env.BACK.fetch(`https://phi.internal/v1/phi/Patient/${id}`, { headers: { ...headers, "x-request-id": requestId ?? crypto.randomUUID() } });
  return env.BACK.fetch(`https://back.internal/Patient/${id}`, { headers });
}
