import { env } from "cloudflare:test";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import { ApproveRefundBody, CreateRefundBody } from "../src/schemas/refund";
import { CaptureBody, CreatePaymentBody, VoidBody } from "../src/schemas/payment";
import { CreatePaymentMethodBody } from "../src/schemas/payment-method";
import { call, dumpAllRows, json, pay, tableCounts, YEAR } from "./helpers";

/** A distinctive, valid (Luhn, visa) card number that must surface nowhere. */
const CANARY = "4571736001234566";
const CANARY_SPACED = "4571 7360 0123 4566";
const CANARY_CVC = "919";
const CHECKER = { sub: "cli_checker", scopes: ["payment:read", "payment:approve"] };
const AUDITOR = { sub: "cli_auditor", scopes: ["audit:read", "payment:read"] };

describe("canary card number", () => {
  const spies: MockInstance[] = [];
  const logged: string[] = [];
  beforeAll(() => {
    for (const m of ["log", "warn", "error", "info", "debug"] as const) {
      spies.push(vi.spyOn(console, m).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(" "))));
    }
  });
  afterAll(() => spies.forEach((s) => s.mockRestore()));

  it("appears in no response, header, log line or stored row on any route, and the CVC is never stored", async () => {
    const seen: string[] = [];
    const record = async (res: Response) => {
      seen.push(`${res.status} ${JSON.stringify([...res.headers])} ${await res.clone().text()}`);
      return res;
    };
    const canaryCard = { number: CANARY_SPACED, exp_month: 7, exp_year: YEAR, cvc: CANARY_CVC, holder_name: "Canary Holder" };
    const pm = await json<{ id: string; last4: string }>(await record(await call("POST", "/v1/payments/payment-methods", { body: canaryCard, key: "canary-pm" })));
    expect(pm.last4).toBe("4566");
    await record(await call("POST", "/v1/payments/payment-methods", { body: canaryCard, key: "canary-pm" }));
    await record(await call("GET", `/v1/payments/payment-methods/${pm.id}`));
    const inline = { number: CANARY, exp_month: 7, exp_year: YEAR, cvc: CANARY_CVC };
    const p1 = await json<{ id: string }>(await record(await call("POST", "/v1/payments", { body: { amount: 90_000, currency: "usd", card: inline, capture: "manual" } })));
    const p2 = await json<{ id: string }>(await record(await call("POST", "/v1/payments", { body: { amount: 500, currency: "gbp", payment_method: pm.id, capture: "manual" } })));
    await record(await call("GET", `/v1/payments/${p1.id}`));
    await record(await call("GET", "/v1/payments?limit=100"));
    await record(await call("POST", `/v1/payments/${p1.id}/capture`));
    await record(await call("POST", `/v1/payments/${p2.id}/void`, { body: { reason: "canary void" } }));
    await record(await call("POST", `/v1/payments/${p1.id}/refunds`, { body: { amount: 100, reason: "small" } }));
    const big = await json<{ id: string }>(await record(await call("POST", `/v1/payments/${p1.id}/refunds`, { body: { amount: 60_000, reason: "big" } })));
    await record(await call("GET", `/v1/payments/refunds/${big.id}`));
    await record(await call("POST", `/v1/payments/refunds/${big.id}/approve`, { caller: CHECKER }));
    await record(await call("GET", "/v1/payments/ledger/balance", { caller: AUDITOR }));
    await record(await call("GET", "/v1/payments/ledger/daily", { caller: AUDITOR }));
    await record(await call("GET", "/v1/payments/audit?limit=200", { caller: AUDITOR }));
    await record(await call("GET", "/v1/payments/audit/verify", { caller: AUDITOR }));
    // Refusals and errors that carry the canary.
    await record(await call("POST", "/v1/payments/payment-methods", { body: { ...canaryCard, cvc: "1" } }));
    await record(await call("POST", "/v1/payments/payment-methods", { body: { ...canaryCard, exp_year: 2001 } }));
    await record(await call("POST", "/v1/payments/payment-methods", { body: { ...canaryCard, number: CANARY + "0" } }));
    await record(await call("POST", "/v1/payments/payment-methods", { body: { ...canaryCard, extra: CANARY } }));
    await record(await call("POST", "/v1/payments/payment-methods", { raw: `{"number":"${CANARY}",` }));
    await record(await call("POST", "/v1/payments/payment-methods", { body: { ...canaryCard, number: Number(CANARY) } }));
    await record(await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: inline, description: `pan ${CANARY}` } }));
    await record(await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: inline, metadata: { [CANARY]: "x" } } }));
    await record(await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: inline }, key: `key-${CANARY}` }));
    await record(await call("POST", `/v1/payments/${p1.id}/refunds`, { body: { amount: 1, reason: CANARY_SPACED } }));
    await record(await call("GET", `/v1/payments/${CANARY}`));
    await record(await call("GET", `/v1/payments?cursor=${CANARY}`));
    await record(await call("GET", `/v1/payments/audit?resource_id=${CANARY}`, { caller: AUDITOR }));

    expect(seen.length).toBeGreaterThan(25);
    const digitsOnly = (s: string) => s.replace(/[^0-9]/g, " ");
    for (const s of seen) {
      expect(s.includes(CANARY), s.slice(0, 120)).toBe(false);
      expect(s.includes(CANARY_SPACED)).toBe(false);
      expect(digitsOnly(s).includes(CANARY)).toBe(false);
    }
    // The spy saw the request log lines (so it would have seen a leak).
    expect(logged.some((l) => l.includes('"msg":"request"'))).toBe(true);
    for (const l of logged) {
      expect(l.includes(CANARY)).toBe(false);
      expect(l.includes(CANARY_SPACED)).toBe(false);
      // Three digits occur by chance in ids and times: look for the CVC as a value or a field.
      expect(l.includes(`"${CANARY_CVC}"`)).toBe(false);
      expect(l.includes('"cvc"')).toBe(false);
    }
    const raw = await dumpAllRows();
    expect(raw.includes(CANARY)).toBe(false);
    expect(raw.includes(CANARY_SPACED)).toBe(false);
    expect(/"919"|[:,[]919[,\]}]/.test(raw)).toBe(false);
    expect(raw.includes("Canary Holder")).toBe(false);
  });
});

/** Values a schema refuses, for fuzzing a route with bodies that must all be turned away. */
/** Invalid as sent: judged after the JSON round trip (`{"k": undefined}` is sent as `{}`, which may be valid). */
const invalidFor = (schema: { safeParse: (v: unknown) => { success: boolean } }) =>
  fc
    .oneof(fc.anything(), fc.object(), fc.jsonValue())
    .filter((v) => {
      const sent = JSON.stringify(v);
      return sent !== undefined && !schema.safeParse(JSON.parse(sent)).success;
    });

describe("card numbers hidden in free text", () => {
  const HIDDEN = ["order 7 4242424242424242", "card 4242 4242 4242 4242 2 items", "4242.4242.4242.4242"];
  const NEAR_MISSES = ["call +1 (415) 555-0100", "order #12345, 2 items"];
  const body = (text: Record<string, unknown>) => ({ amount: 100, currency: "usd", card: { number: "4242424242424242", exp_month: 12, exp_year: YEAR, cvc: "123" }, ...text });

  it("refuses them in a description, a metadata value and a refund reason (400, nothing written), and lets near misses through", async () => {
    const paid = await pay(2000);
    const before = await tableCounts();
    for (const text of HIDDEN) {
      for (const [path, sent] of [
        ["/v1/payments", body({ description: text })],
        ["/v1/payments", body({ metadata: { note: text } })],
        [`/v1/payments/${paid.id}/refunds`, { amount: 100, reason: text }],
      ] as const) {
        const res = await call("POST", path, { body: sent });
        expect(res.status, `${path} ${text}`).toBe(400);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
        const answer = await res.text();
        expect(answer).toContain("invalid_request");
        expect(answer.replace(/\D/g, "")).not.toContain("4242424242424242");
      }
    }
    const { audit_events: _a, ...restBefore } = before;
    const { audit_events: _b, ...restAfter } = await tableCounts();
    expect(restAfter).toEqual(restBefore);
    for (const text of NEAR_MISSES) {
      const res = await call("POST", "/v1/payments", { body: body({ description: text, metadata: { note: text } }) });
      expect(res.status, text).toBe(201);
      expect(await json(res)).toMatchObject({ description: text, metadata: { note: text } });
    }
  });
});

describe("malformed input on every route: 4xx and nothing written", () => {
  it("fuzzes every POST body", async () => {
    const p = await pay(1000, "manual");
    const paid = await pay(2000);
    const refund = await json<{ id: string }>(await call("POST", `/v1/payments/${paid.id}/refunds`, { body: { amount: 100, reason: "r" } }));
    const routes: [string, { safeParse: (v: unknown) => { success: boolean } }][] = [
      ["/v1/payments/payment-methods", CreatePaymentMethodBody],
      ["/v1/payments", CreatePaymentBody],
      [`/v1/payments/${p.id}/capture`, CaptureBody],
      [`/v1/payments/${p.id}/void`, VoidBody],
      [`/v1/payments/${paid.id}/refunds`, CreateRefundBody],
      [`/v1/payments/refunds/${refund.id}/approve`, ApproveRefundBody],
    ];
    const before = await tableCounts();
    for (const [path, schema] of routes) {
      await fc.assert(
        fc.asyncProperty(invalidFor(schema), async (body) => {
          const res = await call("POST", path, { raw: JSON.stringify(body), caller: { sub: "cli_fuzz", scopes: ["payment:*"] } });
          expect(res.status, `${path} ${JSON.stringify(body)}`).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          expect(res.headers.get("content-type")).toContain("application/problem+json");
        }),
        { numRuns: 25 },
      );
      // Not JSON at all, and the wrong media type.
      await fc.assert(
        fc.asyncProperty(fc.string().filter((s) => { try { JSON.parse(s); return false; } catch { return true; } }), async (text) => {
          const res = await call("POST", path, { raw: text });
          expect(res.status).toBe(400);
        }),
        { numRuns: 8 },
      );
      expect((await call("POST", path, { raw: "a=b", headers: { "content-type": "application/x-www-form-urlencoded" } })).status).toBe(415);
    }
    // Nothing is written, except that a request refused inside a handler is audited, as every action is
    // (allowed or denied): such records may appear, and only as refusals.
    const { audit_events: auditBefore = 0, ...restBefore } = before;
    const { audit_events: _auditAfter, ...restAfter } = await tableCounts();
    expect(restAfter).toEqual(restBefore);
    const { results: added } = await env.DB.prepare("SELECT DISTINCT outcome FROM audit_events WHERE seq > ?").bind(auditBefore).all<{ outcome: string }>();
    for (const { outcome } of added) expect(["refused", "denied"]).toContain(outcome);
  }, 120_000);

  it("fuzzes query strings of the read routes: 400 for what is not valid, never a 5xx", async () => {
    const param = fc.constantFrom("status", "created_gte", "created_lt", "limit", "cursor", "from", "to", "after", "resource_id", "action", "bogus");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("/v1/payments", "/v1/payments/ledger/daily", "/v1/payments/audit"), param, fc.string(), async (path, k, v) => {
        const before = await tableCounts();
        const res = await call("GET", `${path}?${new URLSearchParams({ [k]: v }).toString()}`, { caller: { sub: "cli_fuzz", scopes: ["payment:read", "audit:read"] } });
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) {
          // A value refused inside the handler (a bad cursor, from after to) is a refusal the trail records:
          // that record, outcome "refused", is the only write allowed.
          const { audit_events: auditBefore = 0, ...dataBefore } = before;
          const { audit_events: auditAfter = 0, ...dataAfter } = await tableCounts();
          expect(dataAfter).toEqual(dataBefore);
          const added = await env.DB.prepare("SELECT outcome FROM audit_events ORDER BY seq DESC LIMIT ?").bind(Math.max(1, auditAfter - auditBefore)).all<{ outcome: string }>();
          if (auditAfter > auditBefore) for (const r of added.results) expect(r.outcome).toBe("refused");
          expect(auditAfter - auditBefore).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  it("answers 404 for unknown routes and 405 for wrong methods", async () => {
    expect((await call("GET", "/v1/payments/pi_abcdefghijk/nothing")).status).toBe(404);
    expect((await call("DELETE", "/v1/payments/pi_abcdefghijk")).status).toBe(405);
  });
});
