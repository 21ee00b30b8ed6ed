import { describe, expect, it } from "vitest";
import type { KeySet } from "../src/tokens/keys";
import { VERIFIED_CACHE_MAX, verifiedCacheSize, verifyAccessTokenCached } from "../src/tokens/verified-cache";
import { AUDIENCE, basic, claims, clientToken, createClient, form, FORM, gw, hs256, ISSUER, now, token, withBearer } from "./helpers";

/**
 * The gateway's memo of verified tokens (tokens/verified-cache.ts): a hit answers only what the
 * full verification answered before, and only while its time checks still hold; revocation is
 * checked after it on every request, so a cached token is refused once revoked.
 */
function hsKeySet(secret: string, kid = "k1"): KeySet {
  const key = new TextEncoder().encode(secret);
  return { alg: "HS256", signingKid: kid, verify: new Map([[kid, key]]), sign: key, publicJwks: [] };
}

const header = { alg: "HS256", typ: "at+jwt", kid: "k1" };
const opts = (at = now(), over: Partial<{ issuer: string; audience: string }> = {}) => ({ issuer: ISSUER, audience: AUDIENCE, now: at, maxLength: 4096, ...over });

describe("verified-token memo (unit)", () => {
  it("a verified token is answered from memory: the same frozen claims, one entry", async () => {
    const ks = hsKeySet("memo-secret-1");
    const tok = await hs256("memo-secret-1", header, claims({ scope: "phi:read" }));
    const first = await verifyAccessTokenCached(tok, ks, opts());
    const size = verifiedCacheSize();
    const second = await verifyAccessTokenCached(tok, ks, opts());
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    expect(second.claims).toBe(first.claims);
    expect(Object.isFrozen(second.claims) && Object.isFrozen(second.claims.roles)).toBe(true);
    expect(verifiedCacheSize()).toBe(size);
  });

  it("a token that differs in one character is no hit: its own verification refuses it", async () => {
    const ks = hsKeySet("memo-secret-2");
    const tok = await hs256("memo-secret-2", header, claims());
    expect((await verifyAccessTokenCached(tok, ks, opts())).ok).toBe(true);
    const flipped = tok.slice(0, -2) + (tok.endsWith("AA") ? "BB" : "AA");
    expect(await verifyAccessTokenCached(flipped, ks, opts())).toEqual({ ok: false, reason: "bad_signature" });
    const other = await hs256("memo-secret-2", header, { ...claims(), scope: "admin" });
    const forged = `${other.split(".").slice(0, 2).join(".")}.${tok.split(".")[2] ?? ""}`;
    expect(await verifyAccessTokenCached(forged, ks, opts())).toEqual({ ok: false, reason: "bad_signature" });
  });

  it("an entry is honoured only while exp, nbf and iat hold at `now` (same skew as the verifier)", async () => {
    const ks = hsKeySet("memo-secret-3");
    const t = now();
    const tok = await hs256("memo-secret-3", header, claims({ iat: t, nbf: t, exp: t + 60 }));
    expect((await verifyAccessTokenCached(tok, ks, opts(t))).ok).toBe(true);
    // Within the 30 s tolerance after exp: still valid, as jose says.
    expect((await verifyAccessTokenCached(tok, ks, opts(t + 60 + 29))).ok).toBe(true);
    expect(await verifyAccessTokenCached(tok, ks, opts(t + 60 + 30))).toEqual({ ok: false, reason: "expired" });
    expect((await verifyAccessTokenCached(tok, ks, opts(t))).ok).toBe(true);
    // A clock that goes back before nbf / iat (minus the skew) gets the verifier's answer, not the memo's.
    expect(await verifyAccessTokenCached(tok, ks, opts(t - 31))).toEqual({ ok: false, reason: "not_yet_valid" });
  });

  it("another key set (a rotation that removed the key), issuer or audience: the entry is not used", async () => {
    const ks = hsKeySet("memo-secret-4");
    const tok = await hs256("memo-secret-4", header, claims());
    expect((await verifyAccessTokenCached(tok, ks, opts())).ok).toBe(true);
    expect(await verifyAccessTokenCached(tok, hsKeySet("memo-secret-4", "k2"), opts())).toEqual({ ok: false, reason: "unknown_key" });
    expect(await verifyAccessTokenCached(tok, hsKeySet("another-secret"), opts())).toEqual({ ok: false, reason: "bad_signature" });
    expect((await verifyAccessTokenCached(tok, ks, opts())).ok).toBe(true);
    expect(await verifyAccessTokenCached(tok, ks, opts(now(), { issuer: "https://elsewhere" }))).toEqual({ ok: false, reason: "wrong_issuer" });
    expect((await verifyAccessTokenCached(tok, ks, opts())).ok).toBe(true);
    expect(await verifyAccessTokenCached(tok, ks, opts(now(), { audience: "other" }))).toEqual({ ok: false, reason: "wrong_audience" });
  });

  it("is bounded: more distinct tokens than it holds leave it at its maximum", async () => {
    const ks = hsKeySet("memo-secret-5");
    for (let i = 0; i < VERIFIED_CACHE_MAX + 20; i++) {
      const r = await verifyAccessTokenCached(await hs256("memo-secret-5", header, claims()), ks, opts());
      expect(r.ok).toBe(true);
    }
    expect(verifiedCacheSize()).toBe(VERIFIED_CACHE_MAX);
  });

  it("a refused token is never stored", async () => {
    const ks = hsKeySet("memo-secret-6");
    const before = verifiedCacheSize();
    const expired = await hs256("memo-secret-6", header, claims({ exp: now() - 120 }));
    expect(await verifyAccessTokenCached(expired, ks, opts())).toEqual({ ok: false, reason: "expired" });
    expect(verifiedCacheSize()).toBe(before);
  });
});

describe("verified-token memo at the gateway: revocation still wins", () => {
  it("a token accepted (and so memoized) is refused at once after /oauth/revoke", async () => {
    const c = await createClient({ name: "memo-revoke", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    for (let i = 0; i < 3; i++) expect((await withBearer(tok)).status).toBe(404);
    const revoke = await gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(c.client_id, c.client_secret) }, body: form({ token: tok }) });
    expect(revoke.status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await withBearer(tok)).status).toBe(401);
    // The client's other tokens are untouched.
    expect((await withBearer(await clientToken(c, "phi:read"))).status).toBe(404);
  });

  it("a memoized token of a client disabled here is refused at once", async () => {
    const c = await createClient({ name: "memo-disable", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    expect((await withBearer(tok)).status).toBe(404);
    const admin = await token("admin");
    const res = await gw(`/admin/clients/${c.client_id}`, { method: "DELETE", headers: { authorization: `Bearer ${admin}` } });
    expect(res.status).toBeLessThan(300);
    expect((await withBearer(tok)).status).toBe(401);
  });
});
