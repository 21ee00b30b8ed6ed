import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asInsider, call, card, json, pay, sealAll, type PaymentBody } from "./helpers";

const MAKER = { sub: "cli_maker", scopes: ["payment:read", "payment:write", "payment:refund", "payment:approve"] };
const CHECKER = { sub: "cli_checker", scopes: ["payment:read", "payment:approve"] };
const AUDITOR = { sub: "cli_auditor", scopes: ["audit:read", "payment:read"] };
const THRESHOLD = Number(env.REFUND_APPROVAL_THRESHOLD);

interface Refund {
  id: string;
  status: string;
  amount: number;
  requested_by: string;
  approved_by: string | null;
}

interface Balance {
  currencies: { currency: string; accounts: Record<string, number>; total: number }[];
  balanced: boolean;
}

async function ledgerTotals() {
  const { results } = await env.DB.prepare("SELECT entry_id, SUM(amount) AS s FROM ledger_lines GROUP BY entry_id").all<{ s: number }>();
  return results.map((r) => r.s);
}

describe("maker-checker refunds", () => {
  it("pays a refund at the threshold at once and holds one above it for approval", async () => {
    const p = await pay(THRESHOLD * 3);
    const at = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD, reason: "at threshold" }, caller: MAKER });
    expect(await json(at)).toMatchObject({ status: "succeeded" });
    const above = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD + 1, reason: "big" }, caller: MAKER });
    expect(above.status).toBe(201);
    const held = await json<Refund>(above);
    expect(held).toMatchObject({ status: "pending_approval", requested_by: "cli_maker", approved_by: null });
    // Held money moves nothing yet, but is reserved.
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({
      amount_refunded: THRESHOLD,
      amount_refund_pending: THRESHOLD + 1,
      status: "partially_refunded",
    });
    const tooMuch = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD, reason: "over the reserve" }, caller: MAKER });
    expect(tooMuch.status).toBe(422);
    const refundLines = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_lines WHERE refund_id = ?").bind(held.id).first<{ n: number }>();
    expect(refundLines?.n).toBe(0);

    // The maker cannot approve their own refund, even holding payment:approve.
    const self = await call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: MAKER });
    expect(self.status).toBe(403);
    expect((await json(self)).code).toBe("self_approval_forbidden");
    // Without payment:approve: 403 too.
    expect((await call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: { sub: "cli_x", scopes: ["payment:refund"] } })).status).toBe(403);

    const ok = await call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: CHECKER, body: { note: "checked" } });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ status: "succeeded", approved_by: "cli_checker" });
    expect(await json(await call("GET", `/v1/payments/refunds/${held.id}`))).toMatchObject({ status: "succeeded" });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({
      amount_refunded: THRESHOLD * 2 + 1,
      amount_refund_pending: 0,
    });
    const again = await call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: { ...CHECKER, sub: "cli_checker2" } });
    expect(again.status).toBe(409);
    expect((await json(again)).code).toBe("refund_not_pending");
    const denials = await env.DB.prepare("SELECT actor_sub, outcome, code FROM audit_events WHERE action = 'refund.approve' ORDER BY seq").all();
    expect(denials.results).toEqual([
      { actor_sub: "cli_maker", outcome: "denied", code: "self_approval_forbidden" },
      { actor_sub: "cli_x", outcome: "denied", code: "insufficient_scope" },
      { actor_sub: "cli_checker", outcome: "allowed", code: null },
      { actor_sub: "cli_checker2", outcome: "refused", code: "refund_not_pending" },
    ]);
  });

  it("holds the part of a split refund that takes the payment's refunds past the threshold", async () => {
    const p = await pay(THRESHOLD * 3);
    const refund = async (amount: number) => json<Refund>(await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount, reason: "split" }, caller: MAKER }));
    const half = Math.floor(THRESHOLD / 2);
    expect(await refund(half)).toMatchObject({ status: "succeeded" });
    expect(await refund(THRESHOLD - half)).toMatchObject({ status: "succeeded" });
    // Refunded: exactly the threshold. Any more needs a checker, however small.
    const third = await refund(1);
    expect(third).toMatchObject({ status: "pending_approval" });
    // A pending refund counts too.
    expect(await refund(1)).toMatchObject({ status: "pending_approval" });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ amount_refunded: THRESHOLD, amount_refund_pending: 2 });
    const refundLines = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_lines WHERE refund_id = ?").bind(third.id).first<{ n: number }>();
    expect(refundLines?.n).toBe(0);
    expect((await call("POST", `/v1/payments/refunds/${third.id}/approve`, { caller: CHECKER })).status).toBe(200);
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ amount_refunded: THRESHOLD + 1, amount_refund_pending: 1 });
  });

  it("fully refunds through approval, and 404s unknown refunds", async () => {
    const p = await pay(THRESHOLD + 10);
    const held = await json<Refund>(await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD + 10, reason: "all" }, caller: MAKER }));
    await call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: CHECKER });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "refunded" });
    expect((await call("GET", "/v1/payments/refunds/re_doesnotexist12")).status).toBe(404);
    expect((await call("POST", "/v1/payments/refunds/re_doesnotexist12/approve", { caller: CHECKER })).status).toBe(404);
  });
});

describe("ledger", () => {
  it("writes balanced entries with actor, request id and reason for every movement", async () => {
    const p = await pay(900, "manual");
    await call("POST", `/v1/payments/${p.id}/capture`, { body: { amount: 500 } });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 200, reason: "damaged" }, headers: { traceparent } });
    const v = await pay(300, "manual");
    await call("POST", `/v1/payments/${v.id}/void`);
    const { results } = await env.DB.prepare("SELECT * FROM ledger_lines WHERE payment_id IN (?, ?) ORDER BY id").bind(p.id, v.id).all<Record<string, unknown>>();
    expect(results.map((r) => r.kind)).toEqual([
      "authorization", "authorization", "capture", "capture", "capture", "capture", "refund", "refund",
      "authorization", "authorization", "void", "void",
    ]);
    for (const r of results) {
      expect(r.actor).toBe("cli_maker");
      expect(r.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const refundLine = results.find((r) => r.kind === "refund");
    expect(refundLine?.reason).toBe("damaged");
    expect(refundLine?.trace_id).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    const rec = await env.DB.prepare("SELECT trace_id, request_id FROM audit_events WHERE action = 'refund.create' ORDER BY seq DESC LIMIT 1").first();
    expect(rec).toEqual({ trace_id: "4bf92f3577b34da6a3ce929d0e0e4736", request_id: refundLine?.request_id });
    expect((await ledgerTotals()).every((s) => s === 0)).toBe(true);
  });

  it("random sequences of operations over HTTP keep every entry and every currency at zero", async () => {
    type Op = { op: "pay"; amount: number; manual: boolean } | { op: "capture" | "void"; i: number } | { op: "refund"; i: number; amount: number };
    const arb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant("pay" as const), amount: fc.integer({ min: 1, max: THRESHOLD * 2 }), manual: fc.boolean() }),
      fc.record({ op: fc.constantFrom("capture" as const, "void" as const), i: fc.nat() }),
      fc.record({ op: fc.constant("refund" as const), i: fc.nat(), amount: fc.integer({ min: 1, max: THRESHOLD }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(arb, { minLength: 1, maxLength: 8 }), async (ops) => {
        const ids: string[] = [];
        for (const o of ops) {
          if (o.op === "pay") {
            ids.push((await pay(o.amount, o.manual ? "manual" : "automatic")).id);
            continue;
          }
          const id = ids.length ? ids[o.i % ids.length] : undefined;
          if (!id) continue;
          const res = await call("POST", `/v1/payments/${id}/${o.op === "refund" ? "refunds" : o.op}`, o.op === "refund" ? { body: { amount: o.amount, reason: "prop" } } : {});
          expect([200, 201, 409, 422]).toContain(res.status);
        }
        expect((await ledgerTotals()).every((s) => s === 0)).toBe(true);
        const bal = await json<Balance>(await call("GET", "/v1/payments/ledger/balance", { caller: AUDITOR }));
        expect(bal.balanced).toBe(true);
        for (const id of ids) {
          const p = await json<PaymentBody>(await call("GET", `/v1/payments/${id}`));
          const lines = await env.DB.prepare("SELECT account, SUM(amount) AS s FROM ledger_lines WHERE payment_id = ? GROUP BY account").bind(id).all<{ account: string; s: number }>();
          const acct = Object.fromEntries(lines.results.map((l) => [l.account, l.s]));
          expect(acct.processor_receivable ?? 0).toBe(p.amount_captured - p.amount_refunded);
          expect(acct.authorized_funds ?? 0).toBe(p.status === "requires_capture" ? p.amount : 0);
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);

  it("reports balances and a daily summary to audit:read only", async () => {
    const bal = await call("GET", "/v1/payments/ledger/balance", { caller: AUDITOR });
    expect(bal.status).toBe(200);
    const body = await json<Balance>(bal);
    expect(body.balanced).toBe(true);
    const usd = body.currencies.find((c) => c.currency === "USD");
    expect(usd?.total).toBe(0);
    expect(Object.keys(usd?.accounts ?? {})).toContain("processor_receivable");
    const today = new Date().toISOString().slice(0, 10);
    const daily = await json<{ data: { day: string; kind: string; debits: number; credits: number }[] }>(
      await call("GET", `/v1/payments/ledger/daily?from=${today}&to=${today}`, { caller: AUDITOR }),
    );
    expect(daily.data.length).toBeGreaterThan(0);
    for (const d of daily.data) {
      expect(d.day).toBe(today);
      expect(d.debits).toBe(d.credits);
    }
    expect((await call("GET", "/v1/payments/ledger/daily", { caller: AUDITOR })).status).toBe(200);
    expect((await call("GET", "/v1/payments/ledger/daily?from=2026-02-30&to=2026-01-01", { caller: AUDITOR })).status).toBe(400);
    expect((await call("GET", "/v1/payments/ledger/daily?from=2020-01-01&to=2026-01-01", { caller: AUDITOR })).status).toBe(400);
  });

  it("refuses impossible days in the daily summary (400 invalid_range) instead of rolling them over", async () => {
    for (const q of ["from=2024-02-30&to=2024-03-05", "from=2024-02-01&to=2024-02-30", "from=2023-02-29&to=2023-03-01", "from=2024-04-31&to=2024-05-01", "to=2024-13-01", "to=2024-00-10", "from=2024-01-00&to=2024-01-02"]) {
      const res = await call("GET", `/v1/payments/ledger/daily?${q}`, { caller: AUDITOR });
      expect(res.status, q).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await json(res), q).toMatchObject({ code: "invalid_range" });
    }
    // Real days at the edges still answer, echoing the days asked for.
    const leap = await call("GET", "/v1/payments/ledger/daily?from=2024-02-29&to=2024-03-01", { caller: AUDITOR });
    expect(leap.status).toBe(200);
    expect(await json(leap)).toMatchObject({ from: "2024-02-29", to: "2024-03-01" });
    const defaulted = await call("GET", "/v1/payments/ledger/daily?to=2024-03-31", { caller: AUDITOR });
    expect(await json(defaulted)).toMatchObject({ from: "2024-03-01", to: "2024-03-31" });
    expect((await call("GET", "/v1/payments/ledger/balance", { caller: { sub: "cli_billing", scopes: ["payment:read", "payment:write"] } })).status).toBe(403);
  });
});

describe("audit trail", () => {
  it("records every action with actor, outcome and request id, pages in order, and verifies", async () => {
    await pay(100);
    const page1 = await json<{ data: { seq: number; action: string; outcome: string; actor_roles: string[] }[]; next_after: number | null }>(
      await call("GET", "/v1/payments/audit?limit=5", { caller: AUDITOR }),
    );
    expect(page1.data.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(page1.next_after).toBe(5);
    expect(Array.isArray(page1.data[0]?.actor_roles)).toBe(true);
    const page2 = await json<{ data: { seq: number }[] }>(await call("GET", "/v1/payments/audit?limit=5&after=5", { caller: AUDITOR }));
    expect(page2.data[0]?.seq).toBe(6);
    const filtered = await json<{ data: { action: string }[] }>(await call("GET", "/v1/payments/audit?action=refund.approve", { caller: AUDITOR }));
    expect(filtered.data.length).toBeGreaterThan(0);
    expect(filtered.data.every((r) => r.action === "refund.approve")).toBe(true);
    await sealAll();
    const verify = await json<{ ok: boolean; records: number; pending: number }>(await call("GET", "/v1/payments/audit/verify", { caller: AUDITOR }));
    expect(verify.ok).toBe(true);
    expect(verify.pending).toBe(0);
    expect(verify.records).toBeGreaterThan(10);
    // Reading the trail is itself recorded.
    const last = await env.DB.prepare("SELECT action, actor_sub FROM audit_events ORDER BY seq DESC LIMIT 1").first();
    expect(last).toEqual({ action: "audit.verify", actor_sub: "cli_auditor" });
  });

  it("verifies a long chain in segments: a walk agrees with one pass, a break is named by its segment, bad ranges are 400", async () => {
    type Verify = { ok: boolean; records: number; head?: string; broken_at?: number; reason?: string; from: number | null; to: number | null; next_after: number | null; complete: boolean };
    const verify = async (query = "") => {
      const res = await call("GET", `/v1/payments/audit/verify${query}`, { caller: AUDITOR });
      expect(res.status).toBe(200);
      return json<Verify>(res);
    };
    const count = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events").first<{ n: number }>())?.n ?? 0;
    const hashAt = async (seq: number | null) => (await env.DB.prepare("SELECT hash FROM audit_events WHERE seq = ?").bind(seq).first<{ hash: string }>())?.hash;
    for (let i = 0; i < 40 && (await count()) < 30; i++) await pay(100 + i);
    expect(await count()).toBeGreaterThanOrEqual(30);

    // One pass with the defaults (what old callers get): the whole sealed chain, complete.
    await sealAll();
    const before = await count();
    const full = await verify();
    expect(full).toMatchObject({ ok: true, records: before, from: 1, to: before, next_after: null, complete: true });
    expect(full.head).toBe(await hashAt(before));

    // Walk segments of 7. Each request appends its own audit.verify record, pending until the sealer links
    // it (within the delay, which may fall inside the walk): the walk ends at the sealed head as it was when
    // its last segment was read (bounded so a walk that never ends fails instead of hanging).
    const segments: Verify[] = [];
    let after: number | null = 0;
    const bound = 2 * Math.ceil(before / 6) + 10;
    while (after !== null && segments.length < bound) {
      const s = await verify(`?after=${after}&limit=7`);
      segments.push(s);
      after = s.next_after;
    }
    const last = segments.at(-1);
    expect(segments.length).toBeGreaterThanOrEqual(Math.ceil(before / 7));
    expect(segments.every((s) => s.ok)).toBe(true);
    segments.forEach((s, i) => expect([s.from, s.records]).toEqual([i * 7 + 1, s === last ? (last.to ?? 0) - i * 7 : 7]));
    expect(segments.slice(0, -1).every((s) => !s.complete && s.next_after === s.to)).toBe(true);
    expect(last).toMatchObject({ complete: true, next_after: null });
    expect(last?.to).toBeGreaterThanOrEqual(before);
    expect(last?.head).toBe(await hashAt(last?.to ?? null));
    // The same records in one segment: the same verdict and head (the walk's own records, sealed now, follow it).
    await sealAll();
    const once = await verify(`?limit=${last?.to}`);
    expect(once).toMatchObject({ ok: true, records: last?.to, to: last?.to, head: last?.head, complete: false, next_after: last?.to });
    // Resuming at the walk's end checks only what was appended since.
    const resumed = await verify(`?after=${last?.to}`);
    expect(resumed).toMatchObject({ ok: true, from: (last?.to ?? 0) + 1, complete: true });
    expect(resumed.records).toBeGreaterThan(0);

    // Tamper with a record inside the 2nd segment: the 1st still verifies, the 2nd names the record.
    const original = await env.DB.prepare("SELECT amount FROM audit_events WHERE seq = 10").first<{ amount: number | null }>();
    await asInsider(() => env.DB.prepare("UPDATE audit_events SET amount = 999999 WHERE seq = 10").run());
    try {
      expect(await verify("?after=0&limit=7")).toMatchObject({ ok: true, records: 7, to: 7, next_after: 7 });
      expect(await verify("?after=7&limit=7")).toMatchObject({ ok: false, records: 2, broken_at: 10, reason: "hash_mismatch", from: 8, to: 9, next_after: null, complete: false });
      expect(await verify()).toMatchObject({ ok: false, broken_at: 10, records: 9 });
    } finally {
      await asInsider(() => env.DB.prepare("UPDATE audit_events SET amount = ? WHERE seq = 10").bind(original?.amount ?? null).run());
    }
    expect((await verify()).ok).toBe(true);

    // After the head: a 404 problem, recorded as a refused verify; bad values: 400 before any action.
    const head = await count();
    const past = await call("GET", `/v1/payments/audit/verify?after=${head + 5}`, { caller: AUDITOR });
    expect(past.status).toBe(404);
    expect(past.headers.get("content-type")).toContain("application/problem+json");
    expect((await json(past)).code).toBe("audit_record_not_found");
    expect(await env.DB.prepare("SELECT action, outcome, code FROM audit_events ORDER BY seq DESC LIMIT 1").first()).toEqual({
      action: "audit.verify",
      outcome: "refused",
      code: "audit_record_not_found",
    });
    for (const q of ["after=-1", "after=abc", "after=1.5", "after=9007199254740993", "limit=0", "limit=100001", "limit=1e9", "limit=ten", "bogus=1"]) {
      const bad = await call("GET", `/v1/payments/audit/verify?${q}`, { caller: AUDITOR });
      expect(bad.status, q).toBe(400);
      expect(bad.headers.get("content-type"), q).toContain("application/problem+json");
      expect((await json(bad)).code, q).toBe("invalid_request");
    }
    expect((await call("GET", "/v1/payments/audit/verify?limit=100000", { caller: AUDITOR })).status).toBe(200);
    expect((await call("GET", "/v1/payments/audit/verify?after=1", { caller: { sub: "cli_x", scopes: ["payment:read"] } })).status).toBe(403);
  });

  it("detects tampering with a record", async () => {
    await sealAll();
    await expect(env.DB.prepare("UPDATE audit_events SET amount = 1 WHERE seq = 3").run()).rejects.toThrow(/append-only/);
    await asInsider(() => env.DB.prepare("UPDATE audit_events SET amount = 1 WHERE seq = 3").run());
    const res = await json<{ ok: boolean; broken_at: number; reason: string }>(await call("GET", "/v1/payments/audit/verify", { caller: AUDITOR }));
    expect(res).toMatchObject({ ok: false, broken_at: 3, reason: "hash_mismatch" });
  });

  it("fails closed: no answer without a record when the trail cannot be written", async () => {
    const keys = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency_keys").first<{ n: number }>())?.n ?? 0;
    const payments = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM payments").first<{ n: number }>())?.n ?? 0;
    const before = { keys: await keys(), payments: await payments() };
    await env.DB.prepare("ALTER TABLE audit_events RENAME TO audit_events_gone").run();
    try {
      const res = await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: card() }, key: "no-audit" });
      expect(res.status).toBe(503);
      expect((await json(res)).code).toBe("audit_unavailable");
      // Nothing committed, and the key was released for a retry.
      expect({ keys: await keys(), payments: await payments() }).toEqual(before);
      const read = await call("GET", "/v1/payments?limit=1");
      expect(read.status).toBe(503);
    } finally {
      await env.DB.prepare("ALTER TABLE audit_events_gone RENAME TO audit_events").run();
    }
  });
});
