import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { JWT_BEARER } from "../src/tokens/client-assertion";
import { assertion, assertionRequest, jwtClient, registerClient, testKey, TOKEN_URL } from "./assertion-helpers";
import { basic, BASE, FORM, form, gw, ISSUER, randomIp, tokenRequest, withBearer } from "./helpers";

/** SMART Backend Services through the gateway's fetch: register keys, sign an assertion, use the token. */
describe("private_key_jwt: a backend service gets a token with its own key", () => {
  it("ES384 and RS384 keys made in the test: the token's scopes work at the gateway", async () => {
    for (const alg of ["ES384", "RS384"] as const) {
      const key = await testKey(alg);
      const id = await jwtClient([key]);
      const res = await assertionRequest(await assertion(id, key), { scope: "phi:read" });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const body = await res.json<{ access_token: string; token_type: string; scope: string; expires_in: number }>();
      expect(body).toMatchObject({ token_type: "Bearer", scope: "phi:read", expires_in: 900 });
      // The scope works (phi answers: no such patient), and a scope not granted does not.
      expect((await withBearer(body.access_token, "/v1/phi/Patient/no-such")).status).toBe(404);
      const write = await gw("/v1/phi/Patient", { method: "POST", headers: { authorization: `Bearer ${body.access_token}`, "content-type": "application/fhir+json" }, body: "{}" });
      expect(write.status).toBe(403);
      const intro = await gw("/introspect", { headers: { authorization: `Bearer ${body.access_token}` } });
      expect(await intro.json()).toMatchObject({ active: true, client_id: id, sub: id });
    }
  });

  it("ES256 and RS256 too; several keys (rotation): any registered kid signs; the /token alias and a matching client_id work", async () => {
    const es = await testKey("ES256");
    const rs = await testKey("RS256");
    const id = await jwtClient([es, rs]);
    expect((await assertionRequest(await assertion(id, es))).status).toBe(200);
    expect((await assertionRequest(await assertion(id, rs), { client_id: id })).status).toBe(200);
    const alias = await gw("/token", {
      method: "POST",
      headers: { ...FORM, "cf-connecting-ip": randomIp() },
      body: form({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: await assertion(id, es, { aud: `${ISSUER}/token` }) }),
    });
    expect(alias.status).toBe(200);
  });

  it("authenticates introspection and revocation the same way", async () => {
    const key = await testKey("ES384");
    const id = await jwtClient([key]);
    const tok = (await (await assertionRequest(await assertion(id, key))).json<{ access_token: string }>()).access_token;
    const post = async (path: string, params: Record<string, string>) =>
      gw(path, { method: "POST", headers: { ...FORM, "cf-connecting-ip": randomIp() }, body: form({ client_assertion_type: JWT_BEARER, client_assertion: await assertion(id, key), ...params }) });
    expect(await (await post("/oauth/introspect", { token: tok })).json()).toMatchObject({ active: true, client_id: id });
    expect((await post("/oauth/revoke", { token: tok })).status).toBe(200);
    expect(await (await post("/oauth/introspect", { token: tok })).json()).toEqual({ active: false });
  });

  it("refuses mixing methods and an unknown assertion type with 400 invalid_request", async () => {
    const key = await testKey("ES384");
    const id = await jwtClient([key]);
    const jwt = await assertion(id, key);
    const mixed = await assertionRequest(jwt, {}, { authorization: basic(id, "x") });
    expect(mixed.status).toBe(400);
    expect(await mixed.json()).toMatchObject({ error: "invalid_request" });
    expect((await assertionRequest(jwt, { client_secret: "x" })).status).toBe(400);
    const wrongType = await tokenRequest({ grant_type: "client_credentials", client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", client_assertion: jwt }, {});
    expect(wrongType.status).toBe(400);
    expect((await tokenRequest({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER }, {})).status).toBe(400);
  });
});

describe("registration (RFC 7591 metadata on POST /admin/clients)", () => {
  it("stores public keys only, shows them, and gives no secret", async () => {
    const key = await testKey("ES384");
    const res = await registerClient({ name: "svc", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ ...key.publicJwk, use: "sig", alg: "ES384" }] } });
    expect(res.status).toBe(201);
    const body = await res.json<Record<string, unknown>>();
    expect(body).not.toHaveProperty("client_secret");
    expect(body).toMatchObject({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [{ kid: key.kid, kty: "EC", crv: "P-384", alg: "ES384", use: "sig" }] } });
    const row = await env.DB.prepare("SELECT secret_hash, token_endpoint_auth_method, jwks FROM clients WHERE id = ?").bind(body.client_id).first<Record<string, string>>();
    expect(row).toMatchObject({ secret_hash: "", token_endpoint_auth_method: "private_key_jwt" });
    expect(JSON.parse(row?.jwks ?? "[]")).toEqual([{ kty: "EC", kid: key.kid, use: "sig", alg: "ES384", crv: "P-384", x: key.publicJwk.x, y: key.publicJwk.y }]);
    // A secret client says so, and gets its secret.
    const secretClient = await (await registerClient({ name: "s", roles: ["billing"] })).json<Record<string, unknown>>();
    expect(secretClient).toMatchObject({ token_endpoint_auth_method: "client_secret_basic" });
    expect(secretClient).not.toHaveProperty("jwks");
  });

  it("refuses private members, symmetric keys, a missing or repeated kid, an http jwks_uri, and jwks without private_key_jwt", async () => {
    const ec = await testKey("ES256");
    const { privateKey } = await testKey("ES256");
    const { exportJWK } = await import("jose");
    const priv = { ...(await exportJWK(privateKey)), kid: "p" };
    const rsa = await testKey("RS384");
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["EC private key", { jwks: { keys: [priv] } }, /private key member 'd'/],
      ["RSA private members", { jwks: { keys: [{ ...rsa.publicJwk, p: "AQAB", q: "AQAB" }] } }, /private key member 'p'/],
      ["symmetric key", { jwks: { keys: [{ kty: "oct", k: "c2VjcmV0", kid: "s" }] } }, /private key member 'k'/],
      ["oct without k", { jwks: { keys: [{ kty: "oct", kid: "s" }] } }, /symmetric/],
      ["missing kid", { jwks: { keys: [{ ...ec.publicJwk, kid: undefined }] } }, /kid/],
      ["repeated kid", { jwks: { keys: [ec.publicJwk, { ...rsa.publicJwk, kid: ec.kid }] } }, /own kid/],
      ["no keys", { jwks: { keys: [] } }, /keys/],
      ["curve and alg disagree", { jwks: { keys: [{ ...ec.publicJwk, alg: "ES384" }] } }, /alg does not match/],
      ["a point off the curve", { jwks: { keys: [{ ...ec.publicJwk, x: ec.publicJwk.y }] } }, /not a valid public key/],
      ["a short RSA modulus", { jwks: { keys: [{ ...rsa.publicJwk, n: "AQAB" }] } }, /2048/],
      ["private_key_jwt without jwks", { jwks: undefined }, /needs jwks/],
    ];
    for (const [what, over, message] of cases) {
      const res = await registerClient({ name: "bad", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", ...over });
      expect(res.status, what).toBe(400);
      expect(JSON.stringify(await res.json()), what).toMatch(message);
    }
    // jwks_uri by plain http to a public host (jwks-uri.test.ts covers the rest).
    const withUri = await registerClient({ name: "bad", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", jwks_uri: "http://svc.example/jwks.json" });
    expect(withUri.status).toBe(400);
    const secretWithKeys = await registerClient({ name: "bad", roles: ["clinician"], jwks: { keys: [ec.publicJwk] } });
    expect(secretWithKeys.status).toBe(400);
    expect((await registerClient({ name: "bad", roles: ["clinician"], token_endpoint_auth_method: "none" })).status).toBe(400);
  });
});

describe("discovery", () => {
  it("RFC 8414 metadata and the SMART configuration offer private_key_jwt with its algorithms", async () => {
    const algs = ["ES256", "ES384", "RS256", "RS384"];
    const meta = await (await gw("/.well-known/oauth-authorization-server")).json<Record<string, unknown>>();
    expect(meta).toMatchObject({ token_endpoint: TOKEN_URL, token_endpoint_auth_signing_alg_values_supported: algs });
    expect(meta.token_endpoint_auth_methods_supported).toEqual(["client_secret_basic", "client_secret_post", "private_key_jwt"]);
    const smart = await (await gw("/v1/phi/.well-known/smart-configuration")).json<Record<string, unknown>>();
    // On the issuer like the RFC 8414 document, not on the host called (BASE): the same token endpoint.
    expect(smart).toMatchObject({ token_endpoint: TOKEN_URL, jwks_uri: meta.jwks_uri, introspection_endpoint: meta.introspection_endpoint, revocation_endpoint: meta.revocation_endpoint, token_endpoint_auth_signing_alg_values_supported: algs });
    expect(smart.token_endpoint_auth_methods_supported).toContain("private_key_jwt");
    expect(smart.capabilities).toEqual(expect.arrayContaining(["client-confidential-asymmetric"]));
  });

  it("a SMART client that signs aud = the discovered token_endpoint gets a token, even when it called another host", async () => {
    // The test calls BASE (https://gw.test) while JWT_ISSUER is http://127.0.0.1:8787, as a
    // workers.dev or second custom domain would: SMART Backend Services says aud = token_endpoint.
    const smart = await (await gw("/v1/phi/.well-known/smart-configuration")).json<{ token_endpoint: string }>();
    expect(new URL(smart.token_endpoint).origin).not.toBe(BASE);
    const key = await testKey("ES384");
    const id = await jwtClient([key]);
    const res = await assertionRequest(await assertion(id, key, { aud: smart.token_endpoint }), { scope: "phi:read" });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token_type: "Bearer", scope: "phi:read" });
    // The host the client called is still no audience: it is the client's to choose.
    const other = await assertionRequest(await assertion(id, key, { aud: `${BASE}/oauth/token` }), { scope: "phi:read" });
    expect(other.status).toBe(401);
  });
});

describe("lockout and assertions", () => {
  it("an address over its limit: a valid assertion still gets a token, a failing one gets 429", async () => {
    const ip = randomIp();
    for (let i = 0; i < 20; i++) {
      expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`cli_nat_${i}`, "x"), "cf-connecting-ip": ip })).status).toBe(401);
    }
    const key = await testKey("ES384");
    const id = await jwtClient([key]);
    expect((await assertionRequest(await assertion(id, key), {}, { "cf-connecting-ip": ip })).status).toBe(200);
    const other = await testKey("ES384", key.kid);
    expect((await assertionRequest(await assertion(id, other), {}, { "cf-connecting-ip": ip })).status).toBe(429);
    expect((await assertionRequest(await assertion(id, key), {}, { "cf-connecting-ip": ip })).status).toBe(200);
  });

  it("failed assertions lock the client like bad secrets (429 even for a valid one)", async () => {
    const key = await testKey("ES384");
    const forged = await testKey("ES384", key.kid);
    const id = await jwtClient([key]);
    for (let i = 0; i < 5; i++) expect((await assertionRequest(await assertion(id, forged))).status).toBe(401);
    const locked = await assertionRequest(await assertion(id, key));
    expect(locked.status).toBe(429);
    expect(locked.headers.get("retry-after")).toBeTruthy();
  });
});
