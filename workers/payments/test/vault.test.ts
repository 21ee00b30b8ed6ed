import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { decryptField, parseKeyring } from "../../../shared/crypto";
import { tenantRing } from "../../../shared/keys/tenant-keys";
import { countD1 } from "../../auth/test/d1-count";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { call, card, CARDS, dumpAllRows, json, YEAR } from "./helpers";

interface PM {
  id: string;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  fingerprint: string;
}

const tokenize = (body: unknown, key?: string) => call("POST", "/v1/payments/payment-methods", { body, ...(key ? { key } : {}) });

describe("card vault", () => {
  it("tokenizes each brand and answers only token, brand, last4, expiry and fingerprint", async () => {
    const cases: [string, string][] = [
      [CARDS.visa, "visa"],
      [CARDS.mastercard, "mastercard"],
      [CARDS.amex, "amex"],
      [CARDS.discover, "discover"],
    ];
    for (const [number, brand] of cases) {
      const res = await tokenize(card(number));
      expect(res.status).toBe(201);
      const pm = await json<PM>(res);
      expect(Object.keys(pm).sort()).toEqual(["brand", "created_at", "exp_month", "exp_year", "fingerprint", "id", "last4", "object"]);
      expect(pm).toMatchObject({ brand, last4: number.slice(-4), exp_month: 12, exp_year: YEAR });
      expect(pm.id).toMatch(/^pm_/);
      const read = await call("GET", `/v1/payments/payment-methods/${pm.id}`);
      expect(await json(read)).toEqual(pm);
    }
  });

  it("accepts spaces, and gives the same card the same fingerprint and other cards another", async () => {
    const a = await json<PM>(await tokenize(card("4242 4242 4242 4242")));
    const b = await json<PM>(await tokenize(card(CARDS.visa, { exp_month: 1, holder_name: "Ada Lovelace" })));
    const c = await json<PM>(await tokenize(card(CARDS.mastercard)));
    expect(a.fingerprint).toBe(b.fingerprint);
    expect(a.fingerprint).not.toBe(c.fingerprint);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{32}$/);
    expect(a.id).not.toBe(b.id);
  });

  it("refuses Luhn failures, unknown brands, bad lengths, past expiry and bad CVCs with 422 and writes nothing", async () => {
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM payment_methods").first<{ n: number }>();
    const cases: [Record<string, unknown>, string][] = [
      [card("4242424242424241"), "invalid_number"],
      [card("9999999999999995"), "unsupported_brand"],
      [card("424242424242"), "invalid_number"],
      [card("4242-4242-4242-4242"), "invalid_number"],
      [card(CARDS.visa, { exp_year: 2020 }), "invalid_expiry"],
      [card(CARDS.visa, { exp_month: 1, exp_year: new Date().getUTCFullYear() - 1 }), "invalid_expiry"],
      [card(CARDS.visa, { cvc: "12" }), "invalid_cvc"],
      [card(CARDS.amex, { cvc: "123" }), "invalid_cvc"],
    ];
    for (const [body, code] of cases) {
      const res = await tokenize(body);
      expect(res.status, code).toBe(422);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect((await json(res)).code).toBe(code);
    }
    const after = await env.DB.prepare("SELECT COUNT(*) AS n FROM payment_methods").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });

  it("accepts the current month as expiry", async () => {
    const now = new Date();
    const res = await tokenize(card(CARDS.visa, { exp_month: now.getUTCMonth() + 1, exp_year: now.getUTCFullYear() }));
    expect(res.status).toBe(201);
  });

  it("keeps the number only encrypted with a key id, bound to its row, and never the CVC", async () => {
    const pm = await json<PM>(await tokenize(card(CARDS.discover, { cvc: "987" })));
    const row = await env.DB.prepare("SELECT * FROM payment_methods WHERE id = ?").bind(pm.id).first<Record<string, unknown>>();
    expect(row).not.toBeNull();
    const sealed = String(row?.number_enc);
    // Under the tenant's data key (shared/keys/tenant-keys.ts), which the platform keyring only wraps.
    expect(sealed).toMatch(/^v1\.tk_/);
    const platform = await parseKeyring(env.CARD_ENCRYPTION_KEYS);
    await expect(decryptField(platform, sealed, `payment_methods.number_enc:${pm.id}`)).rejects.toThrow();
    const ring = await tenantRing({ db: env.DB, service: "payments", database: "DB", platform, tenant: DEFAULT_TENANT_ID });
    expect(await decryptField(ring, sealed, `payment_methods.number_enc:${pm.id}`)).toBe(CARDS.discover);
    // Moved to another row, the ciphertext does not decrypt (AES-GCM associated data).
    await expect(decryptField(ring, sealed, "payment_methods.number_enc:pm_other")).rejects.toThrow();
    expect(Object.keys(row ?? {}).some((k) => k.includes("cvc"))).toBe(false);
    const raw = await dumpAllRows();
    expect(raw.includes(CARDS.discover)).toBe(false);
    // A 3-digit CVC may occur inside hashes by chance: look for it as a stored value.
    expect(/"987"|[:,[]987[,\]}]/.test(raw)).toBe(false);
  });

  it("a burst of requests that find a tenant's key not cached loads it once: one D1 round trip, one key for all", async () => {
    const platform = await parseKeyring(env.CARD_ENCRYPTION_KEYS);
    const tenant = `t_burst_${crypto.randomUUID()}`;
    const counted = countD1(env.DB);
    const source = { db: counted.db, service: "payments", database: "DB", platform, tenant };
    // The first request loads (and makes) the key; the others poll this isolate's cache on their own timers.
    const rings = await Promise.all(Array.from({ length: 20 }, () => tenantRing(source)));
    expect(counted.roundTrips()).toBe(1);
    expect(rings.every((r) => r === rings[0])).toBe(true);
    expect(rings[0]?.currentKid).toMatch(/^tk_/);
    const stored = await env.DB.prepare("SELECT COUNT(*) AS n FROM tenant_keys WHERE tenant_id = ?").bind(tenant).first<{ n: number }>();
    expect(stored?.n).toBe(1);
    // Cached from then on: no round trip.
    expect(await tenantRing(source)).toBe(rings[0]);
    expect(counted.roundTrips()).toBe(1);
  });

  it("404s an unknown token and 400s a malformed one", async () => {
    expect((await call("GET", "/v1/payments/payment-methods/pm_doesnotexist123")).status).toBe(404);
    expect((await call("GET", "/v1/payments/payment-methods/4242424242424242")).status).toBe(400);
  });

  it("requires the scope even behind the gateway (defense in depth) and audits the denial", async () => {
    const res = await call("POST", "/v1/payments/payment-methods", { body: card(), caller: { sub: "cli_reader", scopes: ["payment:read"] } });
    expect(res.status).toBe(403);
    const rec = await env.DB.prepare("SELECT outcome, code, action FROM audit_events WHERE actor_sub = 'cli_reader'").first();
    expect(rec).toEqual({ outcome: "denied", code: "insufficient_scope", action: "payment_method.create" });
  });
});
