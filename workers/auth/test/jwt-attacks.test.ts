import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { b64url, bootstrapAuth, claims, createClient, clientToken, form, FORM, gw, hs256, now, rawJwt, signRaw, signWith, token, withBearer } from "./helpers";

/**
 * Every forged or broken token must get the same 401 answer: the body never
 * says which check failed (RFC 6750 3.1, RFC 8725).
 */
async function expectRefused(tok: string): Promise<void> {
  const res = await withBearer(tok);
  expect(res.status).toBe(401);
  expect(res.headers.get("www-authenticate")).toBe('Bearer realm="health-platform", error="invalid_token"');
  const body = await res.json<Record<string, unknown>>();
  expect(body).toMatchObject({ status: 401, code: "invalid_token", detail: "The access token is missing, invalid, expired or revoked." });
  expect(Object.keys(body).sort()).toEqual(["code", "detail", "request_id", "status", "title", "type"]);
}

const good = () => signWith(env.CURRENT_KEY, claims());

describe("a correctly signed token is accepted (baseline for the attacks below)", () => {
  it("passes the gateway", async () => {
    const res = await withBearer(await good());
    expect([401, 403]).not.toContain(res.status);
  });
});

describe("JWT attack suite", () => {
  const header = { alg: "ES256", typ: "at+jwt", kid: "test-current" };

  it("refuses alg none in several casings, with and without a signature", async () => {
    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      await expectRefused(rawJwt({ ...header, alg }, claims()));
      await expectRefused(rawJwt({ ...header, alg }, claims(), "sig"));
    }
  });

  it("refuses empty, truncated, all-zero and bit-flipped signatures", async () => {
    const t = await good();
    const [h, p, s] = t.split(".") as [string, string, string];
    await expectRefused(`${h}.${p}.`);
    await expectRefused(`${h}.${p}`);
    await expectRefused(`${h}.${p}.${s.slice(0, 20)}`);
    await expectRefused(`${h}.${p}.${b64url(new Uint8Array(64))}`);
    const flipped = (s[0] === "A" ? "B" : "A") + s.slice(1);
    await expectRefused(`${h}.${p}.${flipped}`);
    // A valid signature moved onto another payload.
    await expectRefused(`${h}.${b64url(JSON.stringify(claims({ scope: "admin phi:write" })))}.${s}`);
  });

  it("refuses HS256 signed with the public key, an empty or a common secret", async () => {
    const pub = JSON.parse(env.CURRENT_KEY) as Record<string, string>;
    delete pub.d;
    const jwks = await (await gw("/.well-known/jwks.json")).text();
    for (const secret of [JSON.stringify(pub), jwks, "", "secret", "password", "health-platform", env.GATEWAY_HMAC_KEY]) {
      await expectRefused(await hs256(secret, { ...header, alg: "HS256" }, claims()));
    }
  });

  it("refuses algorithms outside the allow-list", async () => {
    for (const alg of ["RS256", "PS256", "ES384", "ES512", "EdDSA", "HS512"]) {
      await expectRefused(rawJwt({ ...header, alg }, claims(), b64url(new Uint8Array(64))));
    }
    const { privateKey } = await generateKeyPair("ES384");
    await expectRefused(await new SignJWT(claims()).setProtectedHeader({ ...header, alg: "ES384" }).sign(privateKey));
  });

  it("ignores keys the token brings with it: embedded jwk, jku, x5u, x5c", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = await exportJWK(publicKey);
    const attacker = (h: Record<string, unknown>) => new SignJWT(claims()).setProtectedHeader({ ...header, ...h }).sign(privateKey);
    await expectRefused(await attacker({ jwk }));
    await expectRefused(await attacker({ kid: undefined, jwk }));
    await expectRefused(await attacker({ jku: "https://attacker.example/jwks.json" }));
    await expectRefused(await attacker({ x5u: "https://attacker.example/cert.pem" }));
    await expectRefused(await attacker({ x5c: ["MIIB"] }));
    // Even with our own key: a header that names a key location is refused.
    await expectRefused(await signWith(env.CURRENT_KEY, claims(), { jku: "https://attacker.example/jwks.json" }));
  });

  it("refuses empty, unknown, path-traversal and SQL-looking kids", async () => {
    const cur = JSON.parse(env.CURRENT_KEY) as Record<string, string>;
    for (const kid of ["", "unknown", "../../../../etc/passwd", "/dev/null", "' OR '1'='1", "test-current'; DROP TABLE clients;--", "test-current\u0000"]) {
      await expectRefused(await signWith(JSON.stringify({ ...cur, kid }), claims()));
    }
    await expectRefused(await signWith(env.CURRENT_KEY, claims(), { kid: 42 }));
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'clients'").first<{ n: number }>();
    expect(count?.n).toBe(1);
  });

  it("refuses crit with an unknown extension and b64:false", async () => {
    await expectRefused(await signRaw(env.CURRENT_KEY, { ...header, crit: ["exp-ext"], "exp-ext": true }, claims()));
    await expectRefused(await signRaw(env.CURRENT_KEY, { ...header, b64: false, crit: ["b64"] }, claims()));
    await expectRefused(await signRaw(env.CURRENT_KEY, { ...header, crit: [] }, claims()));
    // The same raw signer with a clean header is accepted: the refusals above are about the headers.
    expect((await withBearer(await signRaw(env.CURRENT_KEY, header, claims()))).status).not.toBe(401);
  });

  it("refuses a wrong or missing typ", async () => {
    for (const typ of ["JWT", "jwt", "at+JWT+x", "", undefined]) {
      await expectRefused(await signWith(env.CURRENT_KEY, claims(), { typ }));
    }
    // The media-type form of the right typ is accepted (RFC 9068 2.1).
    expect((await withBearer(await signWith(env.CURRENT_KEY, claims(), { typ: "application/at+jwt" }))).status).not.toBe(401);
  });

  it("refuses expired tokens and tokens from the future (nbf, iat)", async () => {
    const t = now();
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ exp: t - 120, iat: t - 1000, nbf: t - 1000 })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ nbf: t + 3600 })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ iat: t + 3600 })));
  });

  it("refuses a wrong iss or aud, missing claims, wrong claim types and sub/client_id mismatch", async () => {
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ iss: "https://evil.example" })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ aud: "another-api" })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ aud: ["another-api"] })));
    for (const missing of ["exp", "jti", "sub", "client_id", "scope", "roles", "iat", "nbf"]) {
      await expectRefused(await signWith(env.CURRENT_KEY, claims({ [missing]: undefined })));
    }
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ scope: ["admin"] })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ roles: "admin" })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ exp: "never" })));
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ sub: "someone-else" })));
  });

  it("refuses a payload that is not a JSON object, and headers that are not JSON", async () => {
    const t = await good();
    const [, , s] = t.split(".") as [string, string, string];
    for (const payload of ["[1,2,3]", '"a string"', "42", "null", "not json"]) {
      await expectRefused(rawJwt(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "test-current" }), payload, s));
    }
    await expectRefused(`${b64url("not json")}.${b64url(JSON.stringify(claims()))}.${s}`);
    await expectRefused("a.b.c.d.e");
    await expectRefused("....");
    await expectRefused("eyJ.eyJ.***");
  });

  it("refuses tokens far larger than allowed without parsing them", async () => {
    await expectRefused(await signWith(env.CURRENT_KEY, claims({ pad: "x".repeat(8000) })));
    const huge = "A".repeat(64 * 1024);
    await expectRefused(`${huge}.${huge}.${huge}`);
  });

  it("refuses a token of a client after it was disabled; introspection calls one of an unknown client inactive", async () => {
    const c = await createClient({ name: "soon disabled", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    expect((await withBearer(tok)).status).not.toBe(401);
    await gw(`/admin/clients/${c.client_id}`, { method: "DELETE", headers: { authorization: `Bearer ${await token("admin")}` } });
    await expectRefused(tok);
    // Clients are never deleted, so a token naming an unknown client needs the signing key itself
    // (a rotation matter): the gateway's view holds disabled clients only, introspection reads D1.
    const ghost = await signWith(env.CURRENT_KEY, claims({ sub: "cli_ghost", client_id: "cli_ghost" }));
    const res = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({ token: ghost }) });
    expect(await res.json()).toEqual({ active: false });
  });

  it("refuses a bearer header in the wrong shape", async () => {
    for (const h of ["Bearer", "Bearer  ", "Basic abc", "Bearer a b", "bearer"]) {
      const res = await gw("/v1/phi/Patient/x", { headers: { authorization: h } });
      expect(res.status, h).toBe(401);
    }
  });
});

describe("key rotation", () => {
  it("accepts a token signed by the previous key, refuses one signed by a removed key", async () => {
    expect((await withBearer(await signWith(env.PREVIOUS_KEY, claims()))).status).not.toBe(401);
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const removed = { ...(await exportJWK(privateKey)), kid: "test-removed", alg: "ES256" };
    await expectRefused(await signWith(JSON.stringify(removed), claims()));
    // A removed key that reuses a current kid fails on the signature instead.
    await expectRefused(await signWith(JSON.stringify({ ...removed, kid: "test-current" }), claims()));
  });

  it("signs new tokens with the signing kid only", async () => {
    const t = await token("admin");
    expect((JSON.parse(atob(t.split(".")[0] ?? "")) as { kid: string }).kid).toBe("test-current");
  });
});

describe("HS256 mode (a shared secret instead of a key pair)", () => {
  it("signs and verifies HS256 only, publishes no keys, refuses ES256 and other secrets", async () => {
    const { loadKeySet } = await import("../src/tokens/keys");
    const { issueAccessToken } = await import("../src/tokens/issue");
    const { verifyAccessToken } = await import("../src/tokens/verify");
    const cfg = {
      JWT_ALG: "HS256" as const,
      JWT_HS256_SECRET: "s".repeat(40),
      JWT_SIGNING_KID: undefined,
      JWT_PRIVATE_KEYS: undefined,
    } as unknown as Parameters<typeof loadKeySet>[0];
    const ks = await loadKeySet(cfg);
    expect(ks.publicJwks).toEqual([]);
    const t = now();
    const opts = { issuer: "iss", audience: "aud", now: t, maxLength: 4096 };
    const issued = await issueAccessToken(ks, { issuer: "iss", audience: "aud", clientId: "c", scopes: ["phi:read"], roles: [], ttlSeconds: 60, now: t, deviceId: "dev1" });
    const ok = await verifyAccessToken(issued.token, ks, opts);
    expect(ok).toMatchObject({ ok: true, claims: { client_id: "c", device_id: "dev1" } });
    const other = await loadKeySet({ ...cfg, JWT_HS256_SECRET: "t".repeat(40) });
    expect(await verifyAccessToken(issued.token, other, opts)).toEqual({ ok: false, reason: "bad_signature" });
    const es = await signWith(env.CURRENT_KEY, claims({ iss: "iss", aud: "aud" }), { kid: "hs256" });
    expect(await verifyAccessToken(es, ks, opts)).toEqual({ ok: false, reason: "wrong_algorithm" });
    await expect(loadKeySet({ ...cfg, JWT_HS256_SECRET: undefined })).rejects.toThrow(/JWT_HS256_SECRET/);
    await expect(loadKeySet({ JWT_ALG: "ES256", JWT_PRIVATE_KEYS: "[]" } as unknown as typeof cfg)).rejects.toThrow();
    await expect(loadKeySet({ JWT_ALG: "ES256", JWT_PRIVATE_KEYS: env.CURRENT_KEY.replace(/^/, "[").replace(/$/, "]"), JWT_SIGNING_KID: "nope" } as unknown as typeof cfg)).rejects.toThrow(/JWT_SIGNING_KID/);
  });
});
