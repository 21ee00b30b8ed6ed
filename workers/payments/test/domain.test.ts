import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { brandOf, checkCard, containsPan, expired, luhnValid, normalizeNumber } from "../src/domain/card";
import { ACCOUNTS, entryLines, sumLines, type LedgerEvent } from "../src/domain/ledger";
import { decideApproval, needsApproval } from "../src/domain/maker-checker";
import {
  AUTHORIZATION_TTL_MS,
  EVENT_TYPES,
  PAYMENT_STATUSES,
  transition,
  TRANSITIONS,
  type EventType,
  type PaymentEvent,
  type PaymentState,
} from "../src/domain/state-machine";
import { traceIdOf } from "../src/context";

const NOW = new Date("2026-11-25T12:00:00Z");

describe("card checks", () => {
  it("Luhn accepts valid numbers and refuses any single-digit change", () => {
    for (const n of ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117", "4000000000000002"]) {
      expect(luhnValid(n)).toBe(true);
      const last = Number(n.at(-1));
      expect(luhnValid(n.slice(0, -1) + String((last + 1) % 10))).toBe(false);
    }
  });

  it("derives brands from the number and its length", () => {
    expect(brandOf("4242424242424242")).toBe("visa");
    expect(brandOf("4222222222222")).toBe("visa");
    expect(brandOf("5555555555554444")).toBe("mastercard");
    expect(brandOf("2223003122003222")).toBe("mastercard");
    expect(brandOf("378282246310005")).toBe("amex");
    expect(brandOf("6011111111111117")).toBe("discover");
    expect(brandOf("6500000000000002")).toBe("discover");
    expect(brandOf("3530111333300000")).toBe("jcb");
    expect(brandOf("30569309025904")).toBe("diners");
    expect(brandOf("37828224631000")).toBeUndefined(); // amex prefix, wrong length
    expect(brandOf("9999999999999995")).toBeUndefined();
  });

  it("normalizes spaces only and enforces 13-19 digits", () => {
    expect(normalizeNumber("4242 4242 4242 4242")).toBe("4242424242424242");
    expect(normalizeNumber("4242-4242-4242-4242")).toBeUndefined();
    expect(normalizeNumber("424242424242")).toBeUndefined();
    expect(normalizeNumber("4".repeat(20))).toBeUndefined();
    expect(normalizeNumber("4242a24242424242")).toBeUndefined();
  });

  it("treats a card as valid through its expiry month", () => {
    expect(expired(11, 2026, NOW)).toBe(false);
    expect(expired(10, 2026, NOW)).toBe(true);
    expect(expired(1, 2027, NOW)).toBe(false);
    expect(expired(12, 2025, NOW)).toBe(true);
  });

  it("gives one tagged reason per refusal", () => {
    const base = { number: "4242424242424242", expMonth: 12, expYear: 2028, cvc: "123" };
    expect(checkCard(base, NOW)).toEqual({ ok: true, number: base.number, brand: "visa", last4: "4242" });
    expect(checkCard({ ...base, number: "4242424242424241" }, NOW)).toEqual({ ok: false, code: "invalid_number" });
    expect(checkCard({ ...base, number: "9999999999999995" }, NOW)).toEqual({ ok: false, code: "unsupported_brand" });
    expect(checkCard({ ...base, expYear: 2025 }, NOW)).toEqual({ ok: false, code: "invalid_expiry" });
    expect(checkCard({ ...base, expYear: 2060 }, NOW)).toEqual({ ok: false, code: "invalid_expiry" });
    expect(checkCard({ ...base, cvc: "12" }, NOW)).toEqual({ ok: false, code: "invalid_cvc" });
    expect(checkCard({ ...base, number: "378282246310005", cvc: "123" }, NOW)).toEqual({ ok: false, code: "invalid_cvc" });
    expect(checkCard({ ...base, number: "378282246310005", cvc: "1234" }, NOW)).toMatchObject({ ok: true, brand: "amex" });
  });

  it("finds card numbers hidden in free text", () => {
    expect(containsPan("order 4242 4242 4242 4242 thanks")).toBe(true);
    expect(containsPan("ref 4242-4242-4242-4242")).toBe(true);
    expect(containsPan("invoice 2026-11-25 #12345")).toBe(false);
    expect(containsPan("4242424242424241")).toBe(false);
  });

  it("finds a card number inside a longer digit run or behind any punctuation (a window of 13-19 digits, Luhn, a brand)", () => {
    for (const text of [
      "order 7 4242424242424242",
      "card 4242 4242 4242 4242 2 items",
      "4242.4242.4242.4242",
      "4242/4242/4242/4242",
      "4242 - 4242 - 4242 - 4242",
      "x 1 378282246310005 9",
      "pm 5555-5555-5555-4444-7",
      "\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12\uff14\uff12",
    ]) {
      expect(containsPan(text), text).toBe(true);
    }
    for (const text of ["call +1 (415) 555-0100", "order #12345, 2 items", "2026-12-03 05:56:48.816", "tracking 9400 1000 0000 0000 0000 00", "4242424242424241"]) {
      expect(containsPan(text), text).toBe(false);
    }
  });

  it("reads the trace id of a W3C traceparent only", () => {
    expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(traceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBeNull();
    expect(traceIdOf("garbage")).toBeNull();
    expect(traceIdOf(undefined)).toBeNull();
  });
});

const state = (status: PaymentState["status"], over: Partial<PaymentState> = {}): PaymentState => ({
  status,
  amount: 1000,
  amountCaptured: status === "requires_capture" || status === "declined" || status === "canceled" ? 0 : 1000,
  amountRefunded: status === "refunded" ? 1000 : status === "partially_refunded" ? 400 : 0,
  amountRefundPending: 0,
  authorizedAt: "2026-11-25T11:00:00Z",
  ...over,
});

const sample: Record<EventType, PaymentEvent> = {
  capture: { type: "capture" },
  void: { type: "void" },
  request_refund: { type: "request_refund", amount: 100, needsApproval: false },
  approve_refund: { type: "approve_refund", amount: 100 },
};

describe("payment state machine", () => {
  it("allows exactly the table's transitions, for every state and event", () => {
    for (const s of PAYMENT_STATUSES) {
      for (const e of EVENT_TYPES) {
        const st = e === "approve_refund" ? state(s, { amountRefundPending: 100 }) : state(s);
        const r = transition(st, sample[e], NOW);
        const allowed = TRANSITIONS[s].includes(e);
        expect(r.ok, `${s} + ${e}`).toBe(allowed);
        if (!r.ok && !allowed) expect(r).toEqual({ ok: false, status: 409, code: "invalid_state_transition" });
      }
    }
  });

  it("lands in the documented state for every allowed transition", () => {
    const next = (s: PaymentState, e: PaymentEvent) => {
      const r = transition(s, e, NOW);
      if (!r.ok) throw new Error(r.code);
      return r.next;
    };
    expect(next(state("requires_capture"), { type: "capture" })).toMatchObject({ status: "succeeded", amountCaptured: 1000 });
    expect(next(state("requires_capture"), { type: "capture", amount: 600 })).toMatchObject({ status: "succeeded", amountCaptured: 600 });
    expect(next(state("requires_capture"), { type: "void" })).toMatchObject({ status: "canceled", amountCaptured: 0 });
    expect(next(state("succeeded"), { type: "request_refund", amount: 400, needsApproval: false })).toMatchObject({
      status: "partially_refunded",
      amountRefunded: 400,
    });
    expect(next(state("partially_refunded"), { type: "request_refund", amount: 600, needsApproval: false })).toMatchObject({
      status: "refunded",
      amountRefunded: 1000,
    });
    expect(next(state("succeeded"), { type: "request_refund", amount: 1000, needsApproval: true })).toMatchObject({
      status: "succeeded",
      amountRefundPending: 1000,
    });
    expect(next(state("succeeded", { amountRefundPending: 1000 }), { type: "approve_refund", amount: 1000 })).toMatchObject({
      status: "refunded",
      amountRefundPending: 0,
      amountRefunded: 1000,
    });
  });

  it("refuses amounts past the limits with 422", () => {
    expect(transition(state("requires_capture"), { type: "capture", amount: 1001 }, NOW)).toMatchObject({ status: 422, code: "amount_exceeds_authorized" });
    expect(transition(state("requires_capture"), { type: "capture", amount: 0 }, NOW)).toMatchObject({ status: 422, code: "invalid_amount" });
    expect(transition(state("succeeded"), { type: "request_refund", amount: 1001, needsApproval: false }, NOW)).toMatchObject({
      status: 422,
      code: "refund_exceeds_captured",
    });
    expect(transition(state("succeeded"), { type: "request_refund", amount: 0, needsApproval: false }, NOW)).toMatchObject({ code: "invalid_amount" });
    // Pending refunds reserve their amount.
    expect(
      transition(state("succeeded", { amountRefundPending: 900 }), { type: "request_refund", amount: 101, needsApproval: false }, NOW),
    ).toMatchObject({ code: "refund_exceeds_captured" });
    expect(transition(state("succeeded", { amountRefundPending: 50 }), { type: "approve_refund", amount: 100 }, NOW)).toMatchObject({
      code: "refund_exceeds_captured",
    });
  });

  it("refuses to capture an authorization older than 7 days", () => {
    const old = state("requires_capture", { authorizedAt: new Date(NOW.getTime() - AUTHORIZATION_TTL_MS - 1).toISOString() });
    expect(transition(old, { type: "capture" }, NOW)).toEqual({ ok: false, status: 409, code: "authorization_expired" });
    const edge = state("requires_capture", { authorizedAt: new Date(NOW.getTime() - AUTHORIZATION_TTL_MS).toISOString() });
    expect(transition(edge, { type: "capture" }, NOW).ok).toBe(true);
  });
});

describe("maker-checker", () => {
  const pending = { status: "pending_approval", requestedBy: "maker" };
  it("needs approval strictly above the threshold", () => {
    expect(needsApproval(50_000, 50_000)).toBe(false);
    expect(needsApproval(50_001, 50_000)).toBe(true);
    // The payment's earlier refunds (paid and pending) count: a split refund is held from the part that passes it.
    expect(needsApproval(20_000, 50_000, 30_000)).toBe(false);
    expect(needsApproval(20_001, 50_000, 30_000)).toBe(true);
    expect(needsApproval(1, 50_000, 50_000)).toBe(true);
  });
  it("lets only a different principal with payment:approve release a pending refund", () => {
    expect(decideApproval(pending, { sub: "checker", scopes: ["payment:approve"] })).toEqual({ ok: true });
    expect(decideApproval(pending, { sub: "checker", scopes: ["payment:*"] })).toEqual({ ok: true });
    expect(decideApproval(pending, { sub: "maker", scopes: ["payment:approve"] })).toEqual({ ok: false, status: 403, code: "self_approval_forbidden" });
    expect(decideApproval(pending, { sub: "checker", scopes: ["payment:refund"] })).toEqual({ ok: false, status: 403, code: "insufficient_scope" });
    expect(decideApproval({ ...pending, status: "succeeded" }, { sub: "checker", scopes: ["payment:approve"] })).toEqual({
      ok: false,
      status: 409,
      code: "refund_not_pending",
    });
  });
});

/** A random operation on a random payment of the book. */
type Op =
  | { op: "create"; amount: number; manual: boolean }
  | { op: "capture"; which: number; part: number }
  | { op: "void"; which: number }
  | { op: "refund"; which: number; part: number; held: boolean }
  | { op: "approve"; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("create" as const), amount: fc.integer({ min: 1, max: 1_000_000 }), manual: fc.boolean() }),
  fc.record({ op: fc.constant("capture" as const), which: fc.nat(), part: fc.double({ min: 0, max: 1.2, noNaN: true }) }),
  fc.record({ op: fc.constant("void" as const), which: fc.nat() }),
  fc.record({ op: fc.constant("refund" as const), which: fc.nat(), part: fc.double({ min: 0, max: 1.2, noNaN: true }), held: fc.boolean() }),
  fc.record({ op: fc.constant("approve" as const), which: fc.nat() }),
);

describe("ledger", () => {
  it("every entry kind balances to zero", () => {
    const events: LedgerEvent[] = [
      { kind: "authorization", authorized: 5 },
      { kind: "capture", authorized: 5, captured: 3 },
      { kind: "void", authorized: 5 },
      { kind: "refund", refunded: 2 },
    ];
    for (const e of events) expect(sumLines(entryLines(e))).toBe(0);
  });

  it("1,000 random operation sequences keep the books balanced and consistent with the payments", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const book = new Map<string, number>(ACCOUNTS.map((a) => [a, 0]));
        const post = (e: LedgerEvent) => {
          for (const l of entryLines(e)) book.set(l.account, (book.get(l.account) ?? 0) + l.amount);
        };
        const payments: { s: PaymentState; pending: number[] }[] = [];
        for (const o of ops) {
          if (o.op === "create") {
            const s = state(o.manual ? "requires_capture" : "succeeded", { amount: o.amount, amountCaptured: o.manual ? 0 : o.amount, amountRefunded: 0 });
            post({ kind: "authorization", authorized: o.amount });
            if (!o.manual) post({ kind: "capture", authorized: o.amount, captured: o.amount });
            payments.push({ s, pending: [] });
            continue;
          }
          const p = payments.length ? payments[o.which % payments.length] : undefined;
          if (!p) continue;
          if (o.op === "capture") {
            const amount = Math.max(1, Math.round(p.s.amount * o.part));
            const r = transition(p.s, { type: "capture", amount }, NOW);
            if (r.ok) post({ kind: "capture", authorized: p.s.amount, captured: amount });
            if (r.ok) p.s = r.next;
          } else if (o.op === "void") {
            const r = transition(p.s, { type: "void" }, NOW);
            if (r.ok) post({ kind: "void", authorized: p.s.amount });
            if (r.ok) p.s = r.next;
          } else if (o.op === "refund") {
            const amount = Math.max(1, Math.round(p.s.amountCaptured * o.part));
            const r = transition(p.s, { type: "request_refund", amount, needsApproval: o.held }, NOW);
            if (r.ok && o.held) p.pending.push(amount);
            if (r.ok && !o.held) post({ kind: "refund", refunded: amount });
            if (r.ok) p.s = r.next;
          } else {
            const amount = p.pending.shift();
            if (amount === undefined) continue;
            const r = transition(p.s, { type: "approve_refund", amount }, NOW);
            expect(r.ok).toBe(true);
            if (r.ok) post({ kind: "refund", refunded: amount });
            if (r.ok) p.s = r.next;
          }
        }
        const total = [...book.values()].reduce((a, b) => a + b, 0);
        expect(total).toBe(0);
        const captured = payments.reduce((a, p) => a + p.s.amountCaptured, 0);
        const refunded = payments.reduce((a, p) => a + p.s.amountRefunded, 0);
        const held = payments.filter((p) => p.s.status === "requires_capture").reduce((a, p) => a + p.s.amount, 0);
        expect(book.get("processor_receivable")).toBe(captured - refunded);
        expect((book.get("revenue") ?? 0) + captured).toBe(0);
        expect(book.get("refunds")).toBe(refunded);
        expect(book.get("authorized_funds")).toBe(held);
        for (const p of payments) expect(p.s.amountRefunded + p.s.amountRefundPending).toBeLessThanOrEqual(p.s.amountCaptured);
      }),
      { numRuns: 1000 },
    );
  });
});
