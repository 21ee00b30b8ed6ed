import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { assertion, assertionRequest, eventCount, jwtClient, nextReason, testKey, TOKEN_URL, type TestKey } from "./assertion-helpers";
import { b64url, basic, createClient, gw, hs256, now, rawJwt, tokenRequest } from "./helpers";

/**
 * private_key_jwt attack suite (RFC 7523, RFC 8725, SMART Backend Services): every forged,
 * replayed or misdirected assertion gets the same 401 invalid_client, whatever check failed;
 * the internal reason is recorded as a security event (checked here so each case is known to
 * fail for its own reason), and the assertion itself is never stored.
 */
async function expectRefused(jwt: string, clientId: string, reason: string, extra: Record<string, string> = {}): Promise<void> {
  const before = await eventCount(clientId);
  const res = await assertionRequest(jwt, extra);
  expect(res.status, reason).toBe(401);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = await res.json<Record<string, unknown>>();
  expect(body, reason).toMatchObject({ error: "invalid_client", error_description: "Client authentication failed.", status: 401 });
  expect(JSON.stringify(body)).not.toMatch(/assertion|signature|kid|aud|jti|exp/i);
  expect(await nextReason(clientId, before), reason).toBe(reason);
  // The attempts of one case must not lock the client before the next case is checked.
  await env.DB.prepare("DELETE FROM auth_failures WHERE key = ?").bind(`client:${clientId}`).run();
}

async function setup(): Promise<{ id: string; key: TestKey }> {
  const key = await testKey("ES384");
  return { id: await jwtClient([key]), key };
}

describe("private_key_jwt attack suite", () => {
  it("baseline: the untampered assertion is accepted", async () => {
    const { id, key } = await setup();
    expect((await assertionRequest(await assertion(id, key))).status).toBe(200);
  });

  it("alg none (any casing, with or without a signature)", async () => {
    const { id, key } = await setup();
    const claims = { iss: id, sub: id, aud: TOKEN_URL, exp: now() + 60, jti: crypto.randomUUID() };
    for (const alg of ["none", "None", "NONE"]) {
      await expectRefused(rawJwt({ alg, kid: key.kid }, claims, "c2ln"), id, "assertion_wrong_algorithm");
    }
    // No signature part at all is not even a JWS: refused before any client is named.
    const bare = await assertionRequest(rawJwt({ alg: "none", kid: key.kid }, claims));
    expect(bare.status).toBe(401);
    expect(await bare.json()).toMatchObject({ error: "invalid_client" });
  });

  it("HS256 keyed with the registered public key (key confusion), and other HMACs", async () => {
    const { id, key } = await setup();
    const claims = { iss: id, sub: id, aud: TOKEN_URL, exp: now() + 60, jti: crypto.randomUUID() };
    for (const secret of [JSON.stringify(key.publicJwk), key.publicJwk.x ?? "", "secret"]) {
      await expectRefused(await hs256(secret, { alg: "HS256", kid: key.kid }, claims), id, "assertion_wrong_algorithm");
    }
  });

  it("a kid not registered, and the kid (and key) of another client", async () => {
    const { id, key } = await setup();
    await expectRefused(await assertion(id, key, {}, { kid: "not-registered" }), id, "assertion_unknown_key");
    const other = await setup();
    await expectRefused(await assertion(id, other.key), id, "assertion_unknown_key");
    // The other client's key and kid, claiming to be this client.
    await expectRefused(await assertion(id, { ...other.key }, { iss: id, sub: id }), id, "assertion_unknown_key");
  });

  it("keys and key locations in the header: jwk, jku, x5u, x5c", async () => {
    const { id, key } = await setup();
    const { privateKey, publicKey } = await generateKeyPair("ES384", { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: key.kid };
    const attacker = (h: Record<string, unknown>) =>
      new SignJWT({ iss: id, sub: id, aud: TOKEN_URL, exp: now() + 60, jti: crypto.randomUUID() }).setProtectedHeader({ alg: "ES384", kid: key.kid, ...h }).sign(privateKey);
    await expectRefused(await attacker({ jwk }), id, "assertion_unsupported_header");
    await expectRefused(await attacker({ jku: "https://attacker.example/jwks.json" }), id, "assertion_unsupported_header");
    await expectRefused(await attacker({ x5u: "https://attacker.example/cert.pem" }), id, "assertion_unsupported_header");
    await expectRefused(await attacker({ x5c: ["MIIB"] }), id, "assertion_unsupported_header");
    // Even signed with the registered key, a header naming a key location is refused.
    await expectRefused(await assertion(id, key, {}, { jku: "https://attacker.example/jwks.json" }), id, "assertion_unsupported_header");
  });

  it("expired, exp more than five minutes ahead, missing exp, issued in the future", async () => {
    const { id, key } = await setup();
    await expectRefused(await assertion(id, key, { exp: now() - 120, iat: now() - 200 }), id, "assertion_expired");
    await expectRefused(await assertion(id, key, { exp: now() + 3600 }), id, "assertion_lifetime_too_long");
    await expectRefused(await assertion(id, key, { exp: undefined }), id, "assertion_missing_exp");
    await expectRefused(await assertion(id, key, { iat: now() + 120, exp: now() + 240 }), id, "assertion_issued_in_future");
  });

  it("aud of another server, of the issuer without the token path, or missing", async () => {
    const { id, key } = await setup();
    await expectRefused(await assertion(id, key, { aud: "https://other-ehr.example/oauth/token" }), id, "assertion_wrong_audience");
    await expectRefused(await assertion(id, key, { aud: "http://127.0.0.1:8787" }), id, "assertion_wrong_audience");
    await expectRefused(await assertion(id, key, { aud: undefined }), id, "assertion_wrong_audience");
  });

  it("iss other than sub; sub other than the client; a client_id naming another client", async () => {
    const { id, key } = await setup();
    await expectRefused(await assertion(id, key, { iss: "cli_someone_else" }), id, "assertion_issuer_not_subject");
    const victim = await setup();
    // Signed with this client's key but naming the victim: the victim's keys do not verify it.
    await expectRefused(await assertion(victim.id, key), victim.id, "assertion_unknown_key");
    await expectRefused(await assertion(id, key), id, "assertion_wrong_subject", { client_id: victim.id });
  });

  it("a replayed jti (same assertion, or a new one reusing it), and a missing jti", async () => {
    const { id, key } = await setup();
    const jwt = await assertion(id, key);
    expect((await assertionRequest(jwt)).status).toBe(200);
    await expectRefused(jwt, id, "assertion_replayed");
    const jti = crypto.randomUUID();
    expect((await assertionRequest(await assertion(id, key, { jti }))).status).toBe(200);
    await expectRefused(await assertion(id, key, { jti }), id, "assertion_replayed");
    await expectRefused(await assertion(id, key, { jti: undefined }), id, "assertion_missing_jti");
    // The jti is recorded with the assertion's exp, per client (another client may use the same value).
    const row = await env.DB.prepare("SELECT expires_at FROM used_assertions WHERE client_id = ? AND jti = ?").bind(id, jti).first<number>("expires_at");
    expect(row).toBeGreaterThan(now());
    const other = await setup();
    expect((await assertionRequest(await assertion(other.id, other.key, { jti }))).status).toBe(200);
  });

  it("a tampered signature or payload", async () => {
    const { id, key } = await setup();
    const [h, p, s] = (await assertion(id, key)).split(".") as [string, string, string];
    await expectRefused(`${h}.${p}.${(s[0] === "A" ? "B" : "A") + s.slice(1)}`, id, "assertion_bad_signature");
    const payload = b64url(JSON.stringify({ iss: id, sub: id, aud: TOKEN_URL, exp: now() + 60, jti: crypto.randomUUID() }));
    await expectRefused(`${h}.${payload}.${s}`, id, "assertion_bad_signature");
  });

  it("an assertion for a disabled client", async () => {
    const { id, key } = await setup();
    const del = await gw(`/admin/clients/${id}`, { method: "DELETE", headers: { authorization: basic("x", "y") } });
    expect(del.status).toBe(401);
    await env.DB.prepare("UPDATE clients SET disabled = 1, disabled_at = ? WHERE id = ?").bind(new Date().toISOString(), id).run();
    await expectRefused(await assertion(id, key), id, "assertion_client_disabled");
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM used_assertions WHERE client_id = ?").bind(id).first("n")).toBe(0);
  });

  it("a secret sent for a private_key_jwt client, and an assertion sent for a secret client", async () => {
    const { id } = await setup();
    for (const secret of ["", "x", "0".repeat(64)]) {
      const before = await eventCount(id);
      const res = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(id, secret) });
      expect(res.status).toBe(401);
      expect(await nextReason(id, before)).toBe("bad_credentials");
    }
    const secretClient = await createClient({ name: "secret-client", roles: ["clinician"] });
    const key = await testKey("ES384");
    await expectRefused(await assertion(secretClient.client_id, key), secretClient.client_id, "assertion_client_uses_secret");
    await expectRefused(await assertion(env.BOOTSTRAP_CLIENT_ID, key), env.BOOTSTRAP_CLIENT_ID, "assertion_client_uses_secret");
    // Only an enabled private_key_jwt client reserves a jti: these wrote nothing.
    const unknown = "cli_does_not_exist";
    expect((await assertionRequest(await assertion(unknown, key))).status).toBe(401);
    for (const who of [secretClient.client_id, env.BOOTSTRAP_CLIENT_ID, unknown]) {
      expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM used_assertions WHERE client_id = ?").bind(who).first("n"), who).toBe(0);
    }
  });

  it("never stores the assertion anywhere", async () => {
    const { id, key } = await setup();
    const jwt = await assertion(id, key, { aud: "https://other.example" });
    await expectRefused(jwt, id, "assertion_wrong_audience");
    const dump = JSON.stringify((await env.DB.prepare("SELECT * FROM security_events WHERE client_id = ?").bind(id).all()).results);
    expect(dump).not.toContain(jwt.split(".")[2] ?? "x");
    expect(dump).not.toContain(jwt.split(".")[1] ?? "x");
  });
});
