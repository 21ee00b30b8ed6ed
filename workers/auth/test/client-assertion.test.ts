import fc from "fast-check";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { describe, expect, it } from "vitest";
import { MAX_ASSERTION_LIFETIME, peekAssertion, verifyClientAssertion, type AssertionFailure } from "../src/tokens/client-assertion";
import { b64url, hs256, rawJwt } from "./helpers";

/** The pure validator on its own, with `now` fixed: every rule of RFC 7523 3 and SMART Backend Services. */
const NOW = 1_800_000_000;
const CLIENT = "cli_backend";
const AUD = "https://auth.example/oauth/token";

type Alg = "ES256" | "ES384" | "RS256" | "RS384";
const keys = new Map<Alg, { priv: CryptoKey; pub: JWK }>();
for (const alg of ["ES256", "ES384", "RS256", "RS384"] as const) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith("RS") ? { modulusLength: 2048 } : {}) });
  keys.set(alg, { priv: privateKey, pub: { ...(await exportJWK(publicKey)), kid: `kid-${alg}` } });
}
const key = (alg: Alg) => {
  const k = keys.get(alg);
  if (!k) throw new Error(alg);
  return k;
};
const registered = [...keys.values()].map((k) => k.pub);

function sign(alg: Alg, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: CLIENT, sub: CLIENT, aud: AUD, exp: NOW + 240, iat: NOW, jti: "j-1", ...claims })
    .setProtectedHeader({ alg, kid: `kid-${alg}`, ...header })
    .sign(key(alg).priv);
}

const check = (jwt: string, over: Partial<Parameters<typeof verifyClientAssertion>[1]> = {}) =>
  verifyClientAssertion(jwt, { clientId: CLIENT, keys: registered, audiences: [AUD], now: NOW, ...over });

async function expectFailure(jwt: string, reason: AssertionFailure, over: Partial<Parameters<typeof verifyClientAssertion>[1]> = {}) {
  expect(await check(jwt, over)).toEqual({ ok: false, reason });
}

describe("verifyClientAssertion: accepted", () => {
  it("ES256, ES384, RS256 and RS384 assertions with registered keys", async () => {
    for (const alg of ["ES256", "ES384", "RS256", "RS384"] as const) {
      expect(await check(await sign(alg))).toEqual({ ok: true, clientId: CLIENT, jti: "j-1", exp: NOW + 240 });
    }
  });

  it("aud as an array naming the token endpoint; exp exactly five minutes ahead; clocks 30 s apart", async () => {
    expect((await check(await sign("ES384", { aud: ["https://other.example", AUD] }))).ok).toBe(true);
    expect((await check(await sign("ES384", { exp: NOW + MAX_ASSERTION_LIFETIME, iat: NOW }))).ok).toBe(true);
    expect((await check(await sign("ES384", { iat: NOW + 30, nbf: NOW + 30, exp: NOW + 300 }))).ok).toBe(true);
    expect((await check(await sign("ES384", { exp: NOW - 29, iat: NOW - 100 }))).ok).toBe(true);
    // iat and nbf are optional (RFC 7523 3 items 5-6).
    expect((await check(await sign("RS384", { iat: undefined }))).ok).toBe(true);
  });
});

describe("verifyClientAssertion: refused, each for its own reason", () => {
  it("algorithms: none, HS256 keyed with the public key, outside the allow-list, a key of another type", async () => {
    const payload = { iss: CLIENT, sub: CLIENT, aud: AUD, exp: NOW + 60, jti: "x" };
    for (const alg of ["none", "None", "HS256", "HS384", "PS256", "ES512", "EdDSA"]) {
      await expectFailure(rawJwt({ alg, kid: "kid-ES256" }, payload, alg === "none" ? "" : "c2ln"), alg === "none" ? "malformed" : "wrong_algorithm");
    }
    await expectFailure(rawJwt({ alg: "none", kid: "kid-ES256" }, payload, "c2ln"), "wrong_algorithm");
    await expectFailure(await hs256(JSON.stringify(key("ES256").pub), { alg: "HS256", kid: "kid-ES256" }, payload), "wrong_algorithm");
    // An ES384 header over the ES256 key's kid: the key is never used with another algorithm.
    await expectFailure(await sign("ES384", {}, { kid: "kid-ES256" }), "wrong_algorithm");
    await expectFailure(await sign("RS256", {}, { kid: "kid-ES384" }), "wrong_algorithm");
  });

  it("keys: kid missing or unknown, keys brought by the header, a registered key's alg pinned to another", async () => {
    await expectFailure(await sign("ES256", {}, { kid: undefined }), "missing_kid");
    await expectFailure(await sign("ES256", {}, { kid: "nope" }), "unknown_key");
    for (const h of [{ jwk: key("ES256").pub }, { jku: "https://attacker.example/jwks" }, { x5u: "https://a.example/c" }, { x5c: ["MIIB"] }, { "x5t#S256": "abc" }]) {
      await expectFailure(await sign("ES256", {}, h), "unsupported_header");
    }
    const pinned = [{ ...key("ES256").pub, alg: "ES384" }];
    await expectFailure(await sign("ES256"), "wrong_algorithm", { keys: pinned });
    await expectFailure(await sign("ES256"), "unknown_key", { keys: [] });
  });

  it("signature: tampered payload, flipped, empty or moved signature", async () => {
    const t = await sign("ES384");
    const [h, p, s] = t.split(".") as [string, string, string];
    await expectFailure(`${h}.${b64url(JSON.stringify({ iss: CLIENT, sub: CLIENT, aud: AUD, exp: NOW + 60, jti: "j-2" }))}.${s}`, "bad_signature");
    await expectFailure(`${h}.${p}.${(s[0] === "A" ? "B" : "A") + s.slice(1)}`, "bad_signature");
    await expectFailure(`${h}.${p}.`, "malformed");
    await expectFailure(`${h}.${p}`, "malformed");
  });

  it("identity: iss other than sub, sub other than the client, sub missing", async () => {
    await expectFailure(await sign("ES256", { iss: "cli_other" }), "issuer_not_subject");
    await expectFailure(await sign("ES256", { iss: "cli_other", sub: "cli_other" }), "wrong_subject");
    await expectFailure(await sign("ES256", { sub: undefined }), "invalid_claims");
  });

  it("audience: another server, this server's issuer without the token path, missing", async () => {
    await expectFailure(await sign("ES256", { aud: "https://other.example/oauth/token" }), "wrong_audience");
    await expectFailure(await sign("ES256", { aud: "https://auth.example" }), "wrong_audience");
    await expectFailure(await sign("ES256", { aud: undefined }), "wrong_audience");
  });

  it("time: expired, missing exp, longer-lived than five minutes, issued or valid in the future", async () => {
    await expectFailure(await sign("ES256", { exp: NOW - 31, iat: NOW - 100 }), "expired");
    await expectFailure(await sign("ES256", { exp: undefined }), "missing_exp");
    await expectFailure(await sign("ES256", { exp: NOW + 331 }), "lifetime_too_long");
    await expectFailure(await sign("ES256", { exp: NOW + 3600, iat: NOW }), "lifetime_too_long");
    await expectFailure(await sign("ES256", { iat: NOW - 200, exp: NOW + 200 }), "lifetime_too_long");
    await expectFailure(await sign("ES256", { iat: NOW + 31, exp: NOW + 120 }), "issued_in_future");
    await expectFailure(await sign("ES256", { nbf: NOW + 31, iat: undefined }), "not_yet_valid");
    await expectFailure(await sign("ES256", { exp: "soon" }), "invalid_claims");
    await expectFailure(await sign("ES256", { exp: NOW + 0.5 }), "invalid_claims");
  });

  it("jti: missing, empty, not a string, too long", async () => {
    await expectFailure(await sign("ES256", { jti: undefined }), "missing_jti");
    await expectFailure(await sign("ES256", { jti: "" }), "missing_jti");
    await expectFailure(await sign("ES256", { jti: 7 }), "missing_jti");
    await expectFailure(await sign("ES256", { jti: "j".repeat(201) }), "invalid_claims");
  });

  it("shape: oversized, not three base64url parts, header or payload not a JSON object", async () => {
    await expectFailure("a".repeat(5000), "oversized");
    await expectFailure("not a jwt", "malformed");
    await expectFailure(`${b64url("[]")}.${b64url("{}")}.c2ln`, "malformed");
    await expectFailure(`${b64url('{"alg":"ES256"}')}.${b64url("null")}.c2ln`, "malformed");
    await expectFailure(`${b64url('{"alg":"ES256"}')}.${b64url(new Uint8Array([0xff, 0xfe]))}.c2ln`, "malformed");
  });
});

describe("peekAssertion", () => {
  it("names the client, jti and exp of a well-formed assertion without verifying it", async () => {
    expect(peekAssertion(await sign("RS384"), NOW)).toEqual({ ok: true, peek: { clientId: CLIENT, jti: "j-1", exp: NOW + 240, kid: "kid-RS384", alg: "RS384" } });
  });

  it("never throws and never accepts arbitrary text or arbitrary JSON parts", () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => {
      expect(peekAssertion(s, NOW).ok).toBe(false);
    }), { numRuns: 500 });
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (h, p) => {
        const r = peekAssertion(rawJwt(h, p, "c2ln"), NOW);
        // Only an object header with an allowed alg and kid, and a payload with every required claim, passes the peek.
        if (r.ok) expect(typeof r.peek.jti).toBe("string");
      }),
      { numRuns: 500 },
    );
  });
});
