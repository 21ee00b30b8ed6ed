import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { gatewayHeaders } from "../../../shared/testing/principal";
import worker from "../src/index";
import { ALL_SCOPES, BASE, call, card, CARDS, json, newKey, PAYMENTS_CHAIN, tableCounts, type PaymentBody } from "./helpers";

/**
 * Faults of the store, all from real D1: a binding to a database that has none
 * of its tables (swapped in for one request), a table gone in the middle of a
 * batch, and a write guard (a trigger that RAISEs) on the audit table. Each
 * time: a 503 with a generic body, nothing half-written, and the same request
 * succeeding once the fault is gone.
 */

/** The request as the gateway would forward it, served by this worker with `db` as its database. */
async function callWithDb(db: D1Database, method: string, path: string, body?: unknown, key?: string): Promise<Response> {
  const headers: Record<string, string> = {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "cli_maker", scopes: ALL_SCOPES, roles: ["billing"] })),
  };
  if (key) headers["idempotency-key"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  const ctx = createExecutionContext();
  const req = new Request(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!worker.fetch) throw new Error("the worker has no fetch handler");
  const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, DB: db }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** What a failure answer must never hold: SQL, driver codes, table names, the card. */
function expectGeneric503(res: Response, text: string): void {
  expect(res.status).toBe(503);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(text).not.toMatch(/SQLITE|D1_|no such|INSERT|SELECT|ledger_lines|audit_events|idempotency_keys|stack|at \w+ \(/i);
  expect(text).not.toContain(CARDS.visa);
  expect(text).not.toContain(CARDS.visa.slice(-4) + '"');
}

const ops = async (operation: string): Promise<number> =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = ?").bind(operation).first<{ n: number }>())?.n ?? 0;

/** The acquirer's book: authorizations still standing (approved and not voided). */
async function standingAuthorizations(): Promise<number> {
  const approved = (await env.DB.prepare("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize' AND outcome = 'approved'").first<{ n: number }>())?.n ?? 0;
  return approved - (await ops("void"));
}

async function lastAudit(): Promise<{ action: string; outcome: string; code: string | null }> {
  const row = await env.DB.prepare("SELECT action, outcome, code FROM audit_events ORDER BY seq DESC LIMIT 1").first<{ action: string; outcome: string; code: string | null }>();
  if (!row) throw new Error("no audit record");
  return row;
}

const order = () => ({ amount: 4321, currency: "usd", card: card(), capture: "manual" as const });

/** The same key, after the fault: one payment, a replay answers the same, one standing authorization more. */
async function expectRecovery(key: string, body: ReturnType<typeof order>, standingBefore: number): Promise<PaymentBody> {
  const first = await call("POST", "/v1/payments", { body, key });
  expect(first.status).toBe(201);
  const paid = await json<PaymentBody>(first);
  expect(paid).toMatchObject({ status: "requires_capture", amount: 4321 });
  const again = await call("POST", "/v1/payments", { body, key });
  expect(again.status).toBe(201);
  expect(again.headers.get("idempotent-replayed")).toBe("true");
  expect((await json<PaymentBody>(again)).id).toBe(paid.id);
  expect(await standingAuthorizations()).toBe(standingBefore + 1);
  const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM payments WHERE id = ?").bind(paid.id).first<{ n: number }>();
  expect(n?.n).toBe(1);
  expect(await verifyChain(env.DB, PAYMENTS_CHAIN)).toMatchObject({ ok: true });
  return paid;
}

describe("faults: D1 unavailable", () => {
  it("a database without its tables: 503 storage_unavailable, nothing written anywhere, then the same key charges once", async () => {
    const paid = await (await call("POST", "/v1/payments", { body: order() })).json<PaymentBody>();
    const before = await tableCounts();
    const standing = await standingAuthorizations();
    const key = newKey();
    const body = order();

    const res = await callWithDb(env.FAULT_DB, "POST", "/v1/payments", body, key);
    const text = await res.text();
    expectGeneric503(res, text);
    // The claim of the key was the first statement to fail (storage_unavailable); recording
    // that failure failed too, and a request without its record answers audit_unavailable.
    expect(JSON.parse(text)).toMatchObject({ status: 503, code: "audit_unavailable" });
    expect(res.headers.get("x-request-id")).toBeTruthy();

    const read = await callWithDb(env.FAULT_DB, "GET", `/v1/payments/${paid.id}`);
    const readText = await read.text();
    expectGeneric503(read, readText);
    expect(readText).not.toContain(paid.id);

    // Nothing reached the broken database, nor the real one.
    const tables = await env.FAULT_DB.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").first<{ n: number }>();
    expect(tables?.n).toBe(0);
    expect(await tableCounts()).toEqual(before);

    await expectRecovery(key, body, standing);
  });

  it("a table gone in the middle of the commit batch: the whole batch rolls back, the failure is recorded, the key works again", async () => {
    const before = await tableCounts();
    const standing = await standingAuthorizations();
    const key = newKey();
    const body = order();
    await env.DB.prepare("ALTER TABLE ledger_lines RENAME TO ledger_lines_fault").run();
    try {
      const res = await call("POST", "/v1/payments", { body, key });
      expectGeneric503(res, await res.text());
      const after = await tableCounts();
      // The payment row, its transition, the tokenized card and the stored answer were in
      // the same batch as the ledger line: none of them is left; the key was released.
      for (const t of ["payments", "payment_transitions", "payment_methods", "idempotency_keys", "refunds"]) {
        expect(after[t], t).toBe(before[t]);
      }
      expect(after.ledger_lines_fault).toBe(before.ledger_lines);
      // The attempt itself is on record, once, as failed.
      expect(after.audit_events).toBe((before.audit_events ?? 0) + 1);
      expect(await lastAudit()).toMatchObject({ action: "payment.create", outcome: "failed" });
      // The authorization taken before the commit failed was voided at the processor.
      expect(await standingAuthorizations()).toBe(standing);
    } finally {
      await env.DB.prepare("ALTER TABLE ledger_lines_fault RENAME TO ledger_lines").run();
    }
    const paid = await expectRecovery(key, body, standing);
    const lines = await env.DB.prepare("SELECT COUNT(*) AS n FROM ledger_lines WHERE payment_id = ?").bind(paid.id).first<{ n: number }>();
    // The retried payment's ledger entry is the only one added since the fault began.
    expect(lines?.n).toBeGreaterThan(0);
    expect((await tableCounts()).ledger_lines).toBe((before.ledger_lines ?? 0) + (lines?.n ?? 0));
  });

  it("a write guard on the audit table (a trigger that RAISEs): 503 storage_unavailable, no row at all, no data without its record", async () => {
    const paid = await (await call("POST", "/v1/payments", { body: order() })).json<PaymentBody>();
    const before = await tableCounts();
    const standing = await standingAuthorizations();
    const key = newKey();
    const body = order();
    await env.DB.prepare("CREATE TRIGGER fault_audit_guard BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'read-only for maintenance'); END").run();
    try {
      const res = await call("POST", "/v1/payments", { body, key });
      const text = await res.text();
      expectGeneric503(res, text);
      expect(JSON.parse(text)).toMatchObject({ code: "storage_unavailable" });
      expect(res.headers.get("retry-after")).toBe("1");
      expect(text).not.toContain("maintenance");

      // A read is refused too: its answer would leave without its audit record.
      const read = await call("GET", `/v1/payments/${paid.id}`);
      const readText = await read.text();
      expectGeneric503(read, readText);
      expect(readText).not.toContain(paid.id);
      expect(readText).not.toContain("4321");

      const { processor_operations: _p, ...rest } = await tableCounts();
      const { processor_operations: _q, ...restBefore } = before;
      expect(rest).toEqual(restBefore);
      expect(await standingAuthorizations()).toBe(standing);
    } finally {
      await env.DB.prepare("DROP TRIGGER fault_audit_guard").run();
    }
    await expectRecovery(key, body, standing);
  });
});
