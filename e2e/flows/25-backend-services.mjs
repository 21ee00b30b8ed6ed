// SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html), written from the spec with
// jose only: discover the token endpoint, register a public key, sign a private_key_jwt assertion (RFC 7523), get a
// token, read FHIR with it. ES384 and RS384, the two algorithms the spec requires servers to support.
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export const name = "auth: SMART Backend Services (private_key_jwt) -> token -> FHIR read";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

export default async function (ctx) {
  const { assert } = ctx;
  const smart = await ctx.json("/v1/phi/.well-known/smart-configuration");
  assert.equal(smart.status, 200);
  assert.ok(smart.body.token_endpoint_auth_methods_supported.includes("private_key_jwt"));
  assert.ok(smart.body.capabilities.includes("client-confidential-asymmetric"));
  const meta = await ctx.json("/.well-known/oauth-authorization-server");
  const tokenEndpoint = meta.body.token_endpoint;
  assert.equal(tokenEndpoint, smart.body.token_endpoint);

  for (const alg of ["ES384", "RS384"]) {
    assert.ok(smart.body.token_endpoint_auth_signing_alg_values_supported.includes(alg), alg);
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: `e2e-${alg}`, alg, use: "sig" };
    const reg = await ctx.json("/admin/clients", {
      method: "POST",
      token: await ctx.token("admin"),
      body: { name: `e2e backend ${alg}`, roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [jwk] } },
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.client_secret, undefined);
    const clientId = reg.body.client_id;

    const assertion = await new SignJWT({ iss: clientId, sub: clientId, aud: tokenEndpoint, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg, kid: jwk.kid, typ: "JWT" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    const request = () =>
      fetch(tokenEndpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", scope: "phi:read", client_assertion_type: JWT_BEARER, client_assertion: assertion }),
      });
    const res = await request();
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "Bearer");
    assert.equal(body.scope, "phi:read");

    const search = await ctx.json("/v1/phi/Patient?_count=1", { token: body.access_token });
    assert.equal(search.status, 200);
    assert.equal(search.body.resourceType, "Bundle");
    // The same assertion again: its jti is spent.
    const replay = await request();
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, "invalid_client");
  }
}
