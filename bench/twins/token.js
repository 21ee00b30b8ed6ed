// Limit twin of token issuance (POST /oauth/token, client_credentials): read the form, look the client up
// in D1 and check its secret hash as ours does, sign an RFC 9068 ES256 access token with jose. No lockout
// bookkeeping (ours reads and clears the failure counters: two more D1 statements), no framework.
import { importJWK, SignJWT } from "jose";
import { authenticateClient, basic, json } from "./common.js";

let signingKey;

export default {
  async fetch(request, env) {
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
  },
};
