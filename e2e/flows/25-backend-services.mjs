// SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html), written from the spec with
// jose only: discover the token endpoint, register a public key, sign a private_key_jwt assertion (RFC 7523), get a
// token for the SMART v2 scope system/Patient.rs, read a Patient with it; Observations and writes are refused.
// ES384 and RS384, the two algorithms the spec requires servers to support.
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { fhirValidator } from "../fhir-schema.mjs";

export const name = "auth: SMART Backend Services (private_key_jwt) -> system/Patient.rs token -> FHIR read";

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
  // SMART 2.x conformance: v2 permissions and the scope asked for below are advertised.
  assert.ok(smart.body.capabilities.includes("permission-v2"));
  assert.ok(smart.body.scopes_supported.includes("system/Patient.rs"));
  const validate = fhirValidator();
  const valid = (resource, what) => assert.ok(validate(resource), `${what} is not valid FHIR R4: ${JSON.stringify(validate.errors?.slice(0, 3))}`);

  // A Patient to read (written with a platform token; the backend service below only reads).
  const writer = await ctx.token("phi:write");
  const created = await ctx.json("/v1/phi/Patient", {
    method: "POST",
    token: writer,
    headers: { "content-type": "application/fhir+json" },
    body: { resourceType: "Patient", name: [{ family: "Backend", given: ["Service"] }], birthDate: "1970-01-01" },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const patientId = created.body.id;

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

    const sign = () =>
      new SignJWT({ iss: clientId, sub: clientId, aud: tokenEndpoint, jti: crypto.randomUUID() })
        .setProtectedHeader({ alg, kid: jwk.kid, typ: "JWT" })
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey);
    const assertion = await sign();
    const request = () =>
      fetch(tokenEndpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "client_credentials", scope: "system/Patient.rs", client_assertion_type: JWT_BEARER, client_assertion: assertion }),
      });
    const res = await request();
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.token_type, "Bearer");
    // The granted scope is echoed as asked (SMART clients check it).
    assert.equal(body.scope, "system/Patient.rs");
    const token = body.access_token;

    const read = await ctx.json(`/v1/phi/Patient/${patientId}`, { token });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    valid(read.body, "Patient");
    assert.equal(read.body.id, patientId);
    const search = await ctx.json("/v1/phi/Patient?_count=1", { token });
    assert.equal(search.status, 200);
    valid(search.body, "searchset Bundle");
    // Another resource type, and any write: 403 with an OperationOutcome naming the scope needed.
    const observations = await ctx.json(`/v1/phi/Observation?patient=${patientId}`, { token });
    assert.equal(observations.status, 403);
    valid(observations.body, "OperationOutcome");
    assert.match(JSON.stringify(observations.body), /system\/Observation\.s/);
    const write = await ctx.json("/v1/phi/Patient", { method: "POST", token, headers: { "content-type": "application/fhir+json" }, body: { resourceType: "Patient" } });
    assert.equal(write.status, 403);
    // A scope beyond the SMART ones it may have is invalid_scope (patient/ launch contexts are not supported).
    const other = await fetch(tokenEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", scope: "patient/Patient.rs", client_assertion_type: JWT_BEARER, client_assertion: await sign() }),
    });
    assert.equal(other.status, 400);
    assert.equal((await other.json()).error, "invalid_scope");
    // The same assertion again: its jti is spent.
    const replay = await request();
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, "invalid_client");
  }
}
