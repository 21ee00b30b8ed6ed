import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { checkJwksUri, keysFromSet } from "../src/jwks-uri";
import { assertion, assertionRequest, eventCount, nextReason, registerClient, testKey, type TestKey } from "./assertion-helpers";
import { withBearer } from "./helpers";

/**
 * private_key_jwt clients with keys by reference (RFC 7591 `jwks_uri`): the token endpoint fetches the
 * registered URL from a real HTTP server on 127.0.0.1 (test/fixtures/jwks-server.mjs).
 */
const server = (path: string) => `${env.JWKS_SERVER}${path}`;

async function publish(name: string, keys: TestKey[], extra: Record<string, unknown>[] = []): Promise<string> {
  const res = await fetch(server(`/sets/${name}`), { method: "PUT", body: JSON.stringify({ keys: [...keys.map((k) => ({ ...k.publicJwk, use: "sig" })), ...extra] }) });
  expect(res.status).toBe(204);
  return server(`/sets/${name}`);
}

async function fetches(name: string): Promise<number> {
  return (await (await fetch(server(`/_count/${name}`))).json<{ count: number }>()).count;
}

async function uriClient(uri: string): Promise<string> {
  const res = await registerClient({ name: "keys by reference", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", jwks_uri: uri });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json<{ client_id: string }>()).client_id;
}

/** The one answer every failure gets: nothing about the URL, the fetch or the keys. */
async function expectInvalidClient(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  const body = await res.json<Record<string, unknown>>();
  expect(body).toMatchObject({ error: "invalid_client", error_description: "Client authentication failed.", status: 401 });
  expect(JSON.stringify(body)).not.toMatch(/jwks|127\.0\.0\.1|http|kid|fetch|timeout/i);
}

describe("registration with jwks_uri", () => {
  it("stores the URL, shows it instead of jwks, and issues no secret", async () => {
    const name = crypto.randomUUID();
    const uri = await publish(name, [await testKey("ES384")]);
    const res = await registerClient({ name: "svc", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", jwks_uri: uri });
    expect(res.status).toBe(201);
    const body = await res.json<Record<string, unknown>>();
    expect(body).toMatchObject({ token_endpoint_auth_method: "private_key_jwt", jwks_uri: uri });
    expect(body).not.toHaveProperty("jwks");
    expect(body).not.toHaveProperty("client_secret");
    const row = await env.DB.prepare("SELECT secret_hash, jwks, jwks_uri FROM clients WHERE id = ?").bind(body.client_id).first();
    expect(row).toEqual({ secret_hash: "", jwks: null, jwks_uri: uri });
    // Nothing is fetched at registration: keys are fetched when an assertion needs them.
    expect(await fetches(name)).toBe(0);
  });

  it("refuses anything but https to a public host (http only to 127.0.0.1 here, a test flag), and jwks with jwks_uri", async () => {
    const key = await testKey("ES384");
    const cases: [Record<string, unknown>, string][] = [
      [{ jwks_uri: "http://keys.example.com/jwks.json" }, "https"],
      [{ jwks_uri: "ftp://keys.example.com/jwks.json" }, "https"],
      [{ jwks_uri: "http://localhost:9999/jwks.json" }, "https"],
      [{ jwks_uri: "https://localhost/jwks.json" }, "public host"],
      [{ jwks_uri: "https://10.1.2.3/jwks.json" }, "public host"],
      [{ jwks_uri: "https://169.254.169.254/latest" }, "public host"],
      [{ jwks_uri: "https://[::1]/jwks.json" }, "public host"],
      [{ jwks_uri: "https://user:pw@keys.example.com/jwks.json" }, "credentials"],
      [{ jwks_uri: "https://keys.example.com/jwks.json#k" }, "fragment"],
      [{ jwks_uri: "/jwks.json" }, "absolute"],
      [{ jwks_uri: `https://keys.example.com/${"a".repeat(2100)}` }, ""],
      [{ jwks_uri: "https://keys.example.com/jwks.json", jwks: { keys: [key.publicJwk] } }, "not both"],
    ];
    for (const [extra, text] of cases) {
      const res = await registerClient({ name: "svc", roles: ["clinician"], token_endpoint_auth_method: "private_key_jwt", ...extra });
      expect(res.status, JSON.stringify(extra).slice(0, 80)).toBe(400);
      expect(JSON.stringify(await res.json()), JSON.stringify(extra).slice(0, 80)).toContain(text);
    }
    // jwks_uri is for private_key_jwt clients only.
    expect((await registerClient({ name: "svc", roles: ["clinician"], jwks_uri: "https://keys.example.com/jwks.json" })).status).toBe(400);
  });

  it("the pure rule: without the flag, http and this host are refused", () => {
    expect(checkJwksUri("https://keys.example.com/jwks.json", false)).toEqual({ ok: true, url: "https://keys.example.com/jwks.json" });
    expect(checkJwksUri("http://127.0.0.1:9999/jwks.json", false).ok).toBe(false);
    expect(checkJwksUri("https://127.0.0.1/jwks.json", false).ok).toBe(false);
    expect(checkJwksUri("https://2130706433/jwks.json", false).ok).toBe(false); // 127.0.0.1 spelled as a number
    expect(checkJwksUri("http://127.0.0.1:9999/jwks.json", true).ok).toBe(true);
    expect(checkJwksUri("http://127.0.0.2:9999/jwks.json", true).ok).toBe(false);
  });
});

describe("token requests with keys from jwks_uri", () => {
  it("fetches on first use, then answers from the cache; a new kid (rotation) fetches again; a retired kid is refused", async () => {
    const name = crypto.randomUUID();
    const a = await testKey("ES384");
    const id = await uriClient(await publish(name, [a]));
    const first = await assertionRequest(await assertion(id, a), { scope: "phi:read" });
    expect(first.status).toBe(200);
    expect((await withBearer((await first.json<{ access_token: string }>()).access_token, "/v1/phi/Patient/no-such")).status).toBe(404);
    expect(await fetches(name)).toBe(1);
    expect((await assertionRequest(await assertion(id, a))).status).toBe(200);
    expect(await fetches(name)).toBe(1);

    // Rotation: the client publishes a new key and retires the old one.
    const b = await testKey("RS384");
    await publish(name, [b]);
    expect((await assertionRequest(await assertion(id, b))).status).toBe(200);
    expect(await fetches(name)).toBe(2);
    const before = await eventCount(id);
    await expectInvalidClient(await assertionRequest(await assertion(id, a)));
    expect(await nextReason(id, before)).toBe("assertion_unknown_key");
    expect(await fetches(name)).toBe(3);
  });

  it("a kid the set does not hold, or a key of the wrong type under that kid, is unknown_key", async () => {
    const name = crypto.randomUUID();
    const a = await testKey("ES384");
    const stranger = await testKey("ES384");
    // The stranger's kid is in the set, but only on a curve assertions may not use: skipped, so unknown.
    const id = await uriClient(await publish(name, [a], [{ kty: "EC", kid: stranger.kid, crv: "P-521", x: "AA", y: "AA" }]));
    let before = await eventCount(id);
    await expectInvalidClient(await assertionRequest(await assertion(id, stranger)));
    expect(await nextReason(id, before)).toBe("assertion_unknown_key");
    // An assertion that names a key URL in its header is refused before anything is fetched.
    const elsewhere = crypto.randomUUID();
    await publish(elsewhere, [stranger]);
    before = await eventCount(id);
    await expectInvalidClient(await assertionRequest(await assertion(id, stranger, {}, { jku: server(`/sets/${elsewhere}`) })));
    expect(await nextReason(id, before)).toBe("assertion_unsupported_header");
    expect(await fetches(elsewhere)).toBe(0);
  });

  it("a set with a private key member is refused whole; keys of other uses are skipped", () => {
    expect(keysFromSet(JSON.stringify({ keys: [{ kty: "EC", kid: "a", crv: "P-256", x: "AA", y: "AA", d: "AA" }] }))).toEqual({ ok: false, reason: "jwks_invalid" });
    expect(keysFromSet(JSON.stringify({ keys: [{ kty: "RSA", kid: "enc", use: "enc", n: "AQAB".repeat(90), e: "AQAB" }, { kty: "oct", kid: "s", alg: "HS256" }] }))).toEqual({ ok: true, keys: [] });
    expect(keysFromSet(JSON.stringify({ keys: new Array(21).fill({ kty: "EC" }) }))).toEqual({ ok: false, reason: "jwks_invalid" });
    for (const bad of ["[]", "null", "{}", '{"keys":{}}', "nope"]) expect(keysFromSet(bad), bad).toEqual({ ok: false, reason: "jwks_invalid" });
  });

  it("oversized, invalid, unreachable, hanging, redirecting or failing key URLs: 401 invalid_client, the cause in the security events only", async () => {
    const key = await testKey("ES384");
    const target = crypto.randomUUID();
    await publish(target, [key]);
    const cases: [string, string][] = [
      [server("/big"), "assertion_jwks_too_large"],
      [server("/not-json"), "assertion_jwks_invalid"],
      ["http://127.0.0.1:1/jwks.json", "assertion_jwks_unreachable"],
      [server("/hang"), "assertion_jwks_unreachable"],
      [server(`/redirect/${target}`), "assertion_jwks_status"],
      [server("/fail"), "assertion_jwks_status"],
      [server("/sets/never-published"), "assertion_jwks_status"],
    ];
    for (const [uri, reason] of cases) {
      const id = await uriClient(uri);
      const before = await eventCount(id);
      await expectInvalidClient(await assertionRequest(await assertion(id, key)));
      expect(await nextReason(id, before), uri).toBe(reason);
    }
    // The redirect was not followed.
    expect(await fetches(target)).toBe(0);
  });
});
