import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditInsert, commitWithRecord } from "../../../shared/audit/append";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { auditColumns } from "../src/audit";
import { paymentsConfig } from "../src/config";
import type { RequestInfo } from "../src/context";
import { SimulatedProcessor } from "../src/processor/simulated";
import { capturePayment, voidPayment } from "../src/services/payments";
import { approveRefundStatements } from "../src/store/refunds";
import { countD1 } from "../../auth/test/d1-count";
import { call, card, CARDS, json, pay, type PaymentBody } from "./helpers";

/** The simulator's book for one payment (its authorization, and the operations on its processor_ref): count and total per operation. */
async function book(paymentId: string): Promise<Record<string, { n: number; total: number }>> {
  const { results } = await env.DB.prepare(
    `SELECT operation, COUNT(*) AS n, SUM(amount) AS total FROM processor_operations
     WHERE reference = ? OR reference = (SELECT processor_ref FROM payments WHERE id = ?) GROUP BY operation`,
  )
    .bind(paymentId, paymentId)
    .all<{ operation: string; n: number; total: number }>();
  return Object.fromEntries(results.map((r) => [r.operation, { n: r.n, total: r.total }]));
}

const opCount = async (op: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = ?").bind(op).first<{ n: number }>())?.n ?? 0;

describe("payments: create", () => {
  it("captures automatically by default, answering Stripe-like fields in minor units", async () => {
    const p = await pay(1999);
    expect(p).toMatchObject({ status: "succeeded", amount: 1999, amount_captured: 1999, amount_refunded: 0, currency: "USD", decline_code: null });
    expect(p.id).toMatch(/^pi_/);
    expect(p.payment_method).toMatch(/^pm_/);
    const read = await json<PaymentBody>(await call("GET", `/v1/payments/${p.id}`));
    expect(read).toEqual(p);
  });

  it("pays with a vault token", async () => {
    const pm = await json<{ id: string }>(await call("POST", "/v1/payments/payment-methods", { body: card(CARDS.mastercard) }));
    const res = await call("POST", "/v1/payments", { body: { amount: 500, currency: "EUR", payment_method: pm.id, capture: "manual" } });
    expect(res.status).toBe(201);
    expect(await json(res)).toMatchObject({ status: "requires_capture", amount_captured: 0, payment_method: pm.id, currency: "EUR" });
    const missing = await call("POST", "/v1/payments", { body: { amount: 500, currency: "EUR", payment_method: "pm_doesnotexist1" } });
    expect(missing.status).toBe(404);
  });

  it("accepts amounts up to the configured maximum and refuses past it", async () => {
    const max = Number(env.PAYMENT_MAX_AMOUNT);
    expect((await pay(max)).amount).toBe(max);
    expect((await pay(1)).amount).toBe(1);
    const over = await call("POST", "/v1/payments", { body: { amount: max + 1, currency: "usd", card: card() } });
    expect(over.status).toBe(422);
    expect((await json(over)).code).toBe("amount_too_large");
    for (const amount of [0, -1, 10.5, "100", null]) {
      const res = await call("POST", "/v1/payments", { body: { amount, currency: "usd", card: card() } });
      expect(res.status, String(amount)).toBe(400);
    }
  });

  it("accepts only allow-listed ISO 4217 currencies", async () => {
    const res = await call("POST", "/v1/payments", { body: { amount: 100, currency: "JPY", card: card() } });
    expect(res.status).toBe(422);
    expect((await json(res)).code).toBe("currency_not_supported");
    expect((await call("POST", "/v1/payments", { body: { amount: 100, currency: "US", card: card() } })).status).toBe(400);
  });

  it("needs exactly one of card and payment_method", async () => {
    expect((await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd" } })).status).toBe(400);
    const both = { amount: 100, currency: "usd", card: card(), payment_method: "pm_abcdefghijkl" };
    expect((await call("POST", "/v1/payments", { body: both })).status).toBe(400);
  });

  it("refuses a card number hidden in free text", async () => {
    const res = await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: card(), description: "card 4242 4242 4242 4242" } });
    expect(res.status).toBe(400);
    const meta = await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: card(), metadata: { note: CARDS.visa } } });
    expect(meta.status).toBe(400);
  });

  it("answers declines with 402 and the decline code, keeping the declined payment and moving no money", async () => {
    for (const [number, code] of [
      [CARDS.declined, "card_declined"],
      [CARDS.insufficientFunds, "insufficient_funds"],
      [CARDS.expired, "expired_card"],
    ] as const) {
      const res = await call("POST", "/v1/payments", { body: { amount: 700, currency: "usd", card: card(number) } });
      expect(res.status).toBe(402);
      const body = await json<{ code: string; payment: PaymentBody }>(res);
      expect(body.code).toBe(code);
      expect(body.payment).toMatchObject({ status: "declined", decline_code: code, amount_captured: 0 });
      const lines = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_lines WHERE payment_id = ?").bind(body.payment.id).first<{ n: number }>();
      expect(lines?.n).toBe(0);
      const stored = await json(await call("GET", `/v1/payments/${body.payment.id}`));
      expect(stored).toMatchObject({ status: "declined" });
    }
  });

  it("answers a processor failure with 502, captures nothing, and lets the same key retry", async () => {
    const key = "retry-after-processor-error";
    const payments = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM payments").first<{ n: number }>())?.n ?? 0;
    const before = await payments();
    const body = { amount: 300, currency: "usd", card: card(CARDS.processorError) };
    const res = await call("POST", "/v1/payments", { body, key });
    expect(res.status).toBe(502);
    expect((await json(res)).code).toBe("processor_error");
    expect(await payments()).toBe(before);
    const again = await call("POST", "/v1/payments", { body, key });
    expect(again.status).toBe(502);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    const audit = await env.DB.prepare("SELECT outcome, code FROM audit_events WHERE code = 'processor_error'").all();
    expect(audit.results).toEqual([
      { outcome: "failed", code: "processor_error" },
      { outcome: "failed", code: "processor_error" },
    ]);
  });
});

describe("payments: the processor calls of a creation", () => {
  const request = (number: string) => ({ reference: `pi_sale_${crypto.randomUUID()}`, amount: 700, currency: "USD", card: { number, expMonth: 12, expYear: new Date().getUTCFullYear() + 2 } });
  const book = (reference: string) =>
    env.DB.prepare("SELECT operation, outcome, reference FROM processor_operations WHERE reference = ?").bind(reference).all<{ operation: string; outcome: string; reference: string }>();

  it("automatic capture is one processor call (a sale): its authorization and capture are recorded in one D1 round trip", async () => {
    const counted = countD1(env.DB);
    const sim = new SimulatedProcessor(counted.db, "ten_default");
    const req = request(CARDS.visa);
    const r = await sim.sale(req, new Date());
    expect(r.approved).toBe(true);
    if (!r.approved) return;
    expect(counted.roundTrips()).toBe(1);
    const auth = await env.DB.prepare("SELECT outcome, amount FROM processor_operations WHERE operation = 'authorize' AND reference = ?").bind(req.reference).all();
    const capture = await env.DB.prepare("SELECT outcome, amount FROM processor_operations WHERE operation = 'capture' AND reference = ?").bind(r.processorRef).all();
    expect(auth.results).toEqual([{ outcome: "approved", amount: 700 }]);
    expect(capture.results).toEqual([{ outcome: "ok", amount: 700 }]);
  });

  it("a declined sale records the declined authorization only; a processor failure records nothing", async () => {
    const sim = new SimulatedProcessor(env.DB, "ten_default");
    const req = request(CARDS.declined);
    expect(await sim.sale(req, new Date())).toEqual({ approved: false, declineCode: "card_declined" });
    expect((await book(req.reference)).results).toEqual([{ operation: "authorize", outcome: "card_declined", reference: req.reference }]);
    const failing = request("4000000000000119");
    await expect(sim.sale(failing, new Date())).rejects.toThrow("processor_error");
    expect((await book(failing.reference)).results).toEqual([]);
  });

  it("through the API: automatic capture adds one authorization and one capture, manual capture an authorization only", async () => {
    const [a0, c0] = [await opCount("authorize"), await opCount("capture")];
    await pay(1500);
    expect([await opCount("authorize"), await opCount("capture")]).toEqual([a0 + 1, c0 + 1]);
    const manual = await call("POST", "/v1/payments", { body: { amount: 1500, currency: "usd", card: card(), capture: "manual" } });
    expect(manual.status).toBe(201);
    expect([await opCount("authorize"), await opCount("capture")]).toEqual([a0 + 2, c0 + 1]);
  });
});

describe("payments: transitions over HTTP", () => {
  it("captures a manual payment fully, once", async () => {
    const p = await pay(1000, "manual");
    const cap = await call("POST", `/v1/payments/${p.id}/capture`);
    expect(cap.status).toBe(200);
    expect(await json(cap)).toMatchObject({ status: "succeeded", amount_captured: 1000 });
    const twice = await call("POST", `/v1/payments/${p.id}/capture`);
    expect(twice.status).toBe(409);
    expect((await json(twice)).code).toBe("invalid_state_transition");
  });

  it("captures part of an authorization and refuses more than authorized", async () => {
    const p = await pay(1000, "manual");
    const over = await call("POST", `/v1/payments/${p.id}/capture`, { body: { amount: 1001 } });
    expect(over.status).toBe(422);
    const part = await call("POST", `/v1/payments/${p.id}/capture`, { body: { amount: 600 } });
    expect(await json(part)).toMatchObject({ status: "succeeded", amount: 1000, amount_captured: 600 });
    const refund = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 601, reason: "too much" } });
    expect(refund.status).toBe(422);
    expect((await json(refund)).code).toBe("refund_exceeds_captured");
  });

  it("voids an authorization; a voided payment accepts nothing else", async () => {
    const p = await pay(800, "manual");
    const v = await call("POST", `/v1/payments/${p.id}/void`, { body: { reason: "customer canceled" } });
    expect(await json(v)).toMatchObject({ status: "canceled" });
    for (const [path, body] of [
      ["capture", undefined],
      ["void", undefined],
      ["refunds", { amount: 1, reason: "x" }],
    ] as const) {
      const res = await call("POST", `/v1/payments/${p.id}/${path}`, { body });
      expect(res.status, path).toBe(409);
    }
  });

  it("refunds partially then fully, then refuses any further refund, capture or void", async () => {
    const p = await pay(1000);
    expect((await call("POST", `/v1/payments/${p.id}/void`)).status).toBe(409);
    const r1 = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 400, reason: "partial" } });
    expect(r1.status).toBe(201);
    expect(await json(r1)).toMatchObject({ status: "succeeded", amount: 400, payment: p.id });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "partially_refunded", amount_refunded: 400 });
    const r2 = await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 600, reason: "rest" } });
    expect(r2.status).toBe(201);
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "refunded", amount_refunded: 1000 });
    expect((await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 1, reason: "more" } })).status).toBe(409);
    expect((await call("POST", `/v1/payments/${p.id}/capture`)).status).toBe(409);
  });

  it("declined payments accept no transition", async () => {
    const res = await call("POST", "/v1/payments", { body: { amount: 700, currency: "usd", card: card(CARDS.declined), capture: "manual" } });
    const { payment } = await json<{ payment: PaymentBody }>(res);
    expect((await call("POST", `/v1/payments/${payment.id}/capture`)).status).toBe(409);
    expect((await call("POST", `/v1/payments/${payment.id}/void`)).status).toBe(409);
  });

  it("lets exactly one of many concurrent transitions win; the others get 409", async () => {
    const p = await pay(1000, "manual");
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => call("POST", `/v1/payments/${p.id}/${i % 2 ? "void" : "capture"}`)),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(9);
    const codes = new Set(await Promise.all(results.filter((r) => r.status === 409).map(async (r) => (await json(r)).code)));
    for (const code of codes) expect(["invalid_state_transition", "concurrent_update"]).toContain(code);
    const entries = await env.DB.prepare("SELECT COUNT(DISTINCT entry_id) AS n FROM ledger_lines WHERE payment_id = ? AND kind != 'authorization'")
      .bind(p.id)
      .first<{ n: number }>();
    expect(entries?.n).toBe(1);
    const transitions = await env.DB.prepare("SELECT COUNT(*) AS n FROM payment_transitions WHERE payment_id = ?").bind(p.id).first<{ n: number }>();
    expect(transitions?.n).toBe(2);
  });

  it("rolls back a transition planned from a stale version as a whole (the version guard), and reports the lost race", async () => {
    const p = await pay(1000, "manual");
    const info: RequestInfo = {
      db: env.DB,
      config: paymentsConfig(env),
      principal: { sub: "cli_race", clientId: "cli_race", roles: [], scopes: ["payment:*"], tokenId: "t", tenantId: "ten_default", shard: 0, ip: "127.0.0.1", iat: 0 },
      requestId: crypto.randomUUID(),
      traceId: null,
      now: new Date(),
    };
    const processor = new SimulatedProcessor(env.DB, "ten_default");
    // Both planned from version 1, as two concurrent requests would.
    const capture = await capturePayment(info, p.id, undefined, processor);
    const cancel = await voidPayment(info, p.id, "race", processor);
    const commit = (plan: typeof capture) =>
      commitWithRecord(env.DB, "audit_events", plan.statements, auditInsert(env.DB, "audit_events", auditColumns(info, plan.subject, "allowed", null)));
    expect(await capture.lostRace?.()).toBe(false);
    await commit(capture);
    // The guard row clashes: the caller gets its own constraint error (not an audit failure) and nothing commits.
    await expect(commit(cancel)).rejects.toThrow(/UNIQUE constraint failed: payment_transitions/);
    expect(await cancel.lostRace?.()).toBe(true);
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "succeeded", amount_captured: 1000 });
    const voids = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_lines WHERE payment_id = ? AND kind = 'void'").bind(p.id).first<{ n: number }>();
    expect(voids?.n).toBe(0);
    // The processor's book rolled back with it: the capture that committed, no void.
    expect(await book(p.id)).toEqual({ authorize: { n: 1, total: 1000 }, capture: { n: 1, total: 1000 } });
  });

  it("404s transitions of unknown payments", async () => {
    expect((await call("POST", "/v1/payments/pi_doesnotexist12/capture")).status).toBe(404);
    expect((await call("GET", "/v1/payments/pi_doesnotexist12")).status).toBe(404);
  });

  it("charges the processor once per authorization and records each operation", async () => {
    const before = { auth: await opCount("authorize"), cap: await opCount("capture") };
    const p = await pay(1200, "manual");
    await call("POST", `/v1/payments/${p.id}/capture`);
    expect(await opCount("authorize")).toBe(before.auth + 1);
    expect(await opCount("capture")).toBe(before.cap + 1);
  });
});

describe("payments: the processor's book holds only what committed", () => {
  const MAKER = { sub: "cli_maker", scopes: ["payment:read", "payment:write", "payment:refund"] };
  const CHECKERS = ["cli_checker", "cli_checker2"].map((sub) => ({ sub, scopes: ["payment:read", "payment:approve"] }));
  const THRESHOLD = Number(env.REFUND_APPROVAL_THRESHOLD);
  const answers = (results: Response[]) => Promise.all(results.map(async (r) => ({ status: r.status, code: r.status >= 400 ? (await json(r)).code : undefined })));

  it("concurrent full refunds of one payment: one 201, the rest 409, exactly one refund of the captured amount at the processor", async () => {
    const p = await pay(1000);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: 1000, reason: "race" }, caller: MAKER })),
    );
    const got = await answers(results);
    expect(got.filter((a) => a.status === 201), JSON.stringify(got)).toHaveLength(1);
    expect(got.filter((a) => a.status === 409), JSON.stringify(got)).toHaveLength(5);
    for (const a of got.filter((x) => x.status === 409)) expect(["invalid_state_transition", "concurrent_update"]).toContain(a.code);
    expect(await book(p.id)).toEqual({ authorize: { n: 1, total: 1000 }, capture: { n: 1, total: 1000 }, refund: { n: 1, total: 1000 } });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "refunded", amount_refunded: 1000 });
  });

  it("concurrent captures and voids of one authorization: one wins, and the processor saw that one only", async () => {
    const p = await pay(1000, "manual");
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => call("POST", `/v1/payments/${p.id}/${i % 3 ? "capture" : "void"}`)));
    const got = await answers(results);
    expect(got.filter((a) => a.status === 200), JSON.stringify(got)).toHaveLength(1);
    expect(got.filter((a) => a.status === 409), JSON.stringify(got)).toHaveLength(5);
    const { status } = await json<PaymentBody>(await call("GET", `/v1/payments/${p.id}`));
    const won = status === "succeeded" ? { capture: { n: 1, total: 1000 } } : { void: { n: 1, total: 1000 } };
    expect(await book(p.id)).toEqual({ authorize: { n: 1, total: 1000 }, ...won });
  });

  it("concurrent approvals of one held refund: one 200, and one refund at the processor", async () => {
    const p = await pay(THRESHOLD * 2);
    const held = await json<{ id: string; status: string }>(await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD + 1, reason: "big" }, caller: MAKER }));
    expect(held.status).toBe("pending_approval");
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => call("POST", `/v1/payments/refunds/${held.id}/approve`, { caller: CHECKERS[i % 2] })));
    const got = await answers(results);
    expect(got.filter((a) => a.status === 200), JSON.stringify(got)).toHaveLength(1);
    expect(got.filter((a) => a.status === 409), JSON.stringify(got)).toHaveLength(3);
    expect((await book(p.id)).refund).toEqual({ n: 1, total: THRESHOLD + 1 });
  });

  it("an approval's batch fails unless its refund is still pending when it runs (a second approval that read the refund as pending pays nothing)", async () => {
    // Two held refunds of one payment: once the first is approved, its payment's version has moved, so a late
    // approval of it that read the payment afterwards would pass the version guard; its own guard stops it.
    const p = await pay(THRESHOLD * 4);
    const hold = async () =>
      json<{ id: string; status: string }>(await call("POST", `/v1/payments/${p.id}/refunds`, { body: { amount: THRESHOLD + 1, reason: "big" }, caller: MAKER }));
    const [first, second] = [await hold(), await hold()];
    expect([first.status, second.status]).toEqual(["pending_approval", "pending_approval"]);
    expect((await call("POST", `/v1/payments/refunds/${first.id}/approve`, { caller: CHECKERS[0] })).status).toBe(200);
    const at = new Date().toISOString();
    const [lateGuard] = approveRefundStatements(env.DB, DEFAULT_TENANT_ID, first.id, "cli_checker2", at);
    await expect(env.DB.batch([lateGuard as D1PreparedStatement])).rejects.toThrow();
    const [pendingGuard] = approveRefundStatements(env.DB, DEFAULT_TENANT_ID, second.id, "cli_checker2", at);
    await expect(env.DB.batch([pendingGuard as D1PreparedStatement])).resolves.toHaveLength(1);
    expect((await book(p.id)).refund).toEqual({ n: 1, total: THRESHOLD + 1 });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ amount_refunded: THRESHOLD + 1, amount_refund_pending: THRESHOLD + 1 });
  });

  it("a refund whose commit batch fails books nothing at the processor; the retry with its key refunds once", async () => {
    const p = await pay(700);
    const key = `refund-fault-${crypto.randomUUID()}`;
    const body = { amount: 300, reason: "fault" };
    await env.DB.prepare("ALTER TABLE ledger_lines RENAME TO ledger_lines_fault_refund").run();
    try {
      const res = await call("POST", `/v1/payments/${p.id}/refunds`, { body, key, caller: MAKER });
      expect(res.status).toBe(503);
      expect((await book(p.id)).refund).toBeUndefined();
    } finally {
      await env.DB.prepare("ALTER TABLE ledger_lines_fault_refund RENAME TO ledger_lines").run();
    }
    expect((await call("POST", `/v1/payments/${p.id}/refunds`, { body, key, caller: MAKER })).status).toBe(201);
    const again = await call("POST", `/v1/payments/${p.id}/refunds`, { body, key, caller: MAKER });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await book(p.id)).refund).toEqual({ n: 1, total: 300 });
    expect(await json(await call("GET", `/v1/payments/${p.id}`))).toMatchObject({ status: "partially_refunded", amount_refunded: 300 });
  });
});

describe("payments: list", () => {
  it("pages newest first with a cursor and filters by status and time", async () => {
    const start = new Date().toISOString();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await pay(100 + i, i % 2 ? "manual" : "automatic")).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `?limit=2&created_gte=${encodeURIComponent(start)}${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await json<{ data: PaymentBody[]; next_cursor: string | null }>(await call("GET", `/v1/payments${q}`));
      expect(page.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.data.map((p) => p.id));
      cursor = page.next_cursor;
    } while (cursor);
    // Every payment exactly once across pages (ids break ties between equal timestamps).
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...made].sort());
    const manual = await json<{ data: PaymentBody[] }>(await call("GET", `/v1/payments?status=requires_capture&created_gte=${encodeURIComponent(start)}`));
    expect(manual.data.map((p) => p.id).sort()).toEqual([made[1], made[3]].sort());
    const none = await json<{ data: PaymentBody[] }>(await call("GET", `/v1/payments?created_lt=${encodeURIComponent("2000-01-01T00:00:00Z")}`));
    expect(none.data).toEqual([]);
    expect((await call("GET", "/v1/payments?cursor=bm90LWpzb24")).status).toBe(400);
    expect((await call("GET", "/v1/payments?status=weird")).status).toBe(400);
    expect((await call("GET", "/v1/payments?limit=1000")).status).toBe(400);
  });
});
