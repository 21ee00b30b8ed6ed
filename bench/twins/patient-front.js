// Limit twin of the authenticated Patient read, front half (the gateway's essential work): verify the same
// ES256 access token with jose against the same public key, check the scope, forward over a service binding.
// Variants, by binding, each adding one piece of ours (for "what costs what"):
//   TWIN_REVOCATION=1  the revocation / client-state query our gateway makes (one D1 query on the auth database)
//   TWIN_PRINCIPAL=1   a signed principal header (HMAC-SHA256 over its JSON), as ours attaches and phi verifies
//   TWIN_BACK=ours     forward to our phi worker instead of the back twin (our principal, with the tenant and shard
//                      of the token, and phi's path): what our phi costs behind the twin's front
import { b64u, bearer, tokenStillValid, utf8, verifyToken } from "./common.js";

let hmacKey;

export default {
  async fetch(request, env) {
    const claims = await verifyToken(env, bearer(request));
    if (!claims) return new Response(null, { status: 401 });
    if (env.TWIN_REVOCATION === "1" && !(await tokenStillValid(env.AUTH_DB, claims))) return new Response(null, { status: 401 });
    if (!String(claims.scope).split(" ").includes("phi:read")) return new Response(null, { status: 403 });
    const id = new URL(request.url).pathname.split("/").pop();
    const headers = { "x-sub": claims.sub };
    if (env.TWIN_PRINCIPAL === "1") {
      // The key itself is cached, not a promise (as ours): no request awaits another's import.
      hmacKey ??= await crypto.subtle.importKey("raw", utf8(env.GATEWAY_HMAC_KEY), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
      const principal = { sub: claims.sub, clientId: claims.client_id, roles: claims.roles, scopes: String(claims.scope).split(" "), tokenId: claims.jti, ip: "unknown", iat: Math.floor(Date.now() / 1000) };
      if (env.TWIN_BACK === "ours") Object.assign(principal, { tenantId: claims.tenant_id, shard: claims.tenant_shard ?? 0 });
      const payload = b64u(utf8(JSON.stringify(principal)));
      headers["x-gateway-principal"] = `${payload}.${b64u(await crypto.subtle.sign("HMAC", hmacKey, utf8(payload)))}`;
    }
    if (env.TWIN_BACK === "ours") return env.BACK.fetch(`https://phi.internal/v1/phi/Patient/${id}`, { headers: { ...headers, "x-request-id": crypto.randomUUID() } });
    return env.BACK.fetch(`https://back.internal/Patient/${id}`, { headers });
  },
};
