import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditInsert } from "../../../shared/audit/append";
import { sealPending } from "../../../shared/audit/seal";
import { verifyChain } from "../../../shared/audit/verify";
import { withoutGuards } from "../../../shared/testing/audit";
import { PAYMENTS_CHAIN } from "./helpers";

/**
 * The tenants migration on a database written before tenants: every row moves into the default
 * tenant, the audit chain sealed before the new column still verifies (shared/audit/hash.ts,
 * LATE_COLUMNS), new records of other tenants extend it with their tenant hashed, and the
 * append-only triggers cover the new column.
 */
const record = (n: number, extra: Record<string, string> = {}) => ({
  at: `2026-11-2${n}T10:00:00.000Z`, actor_sub: "old", actor_client: "cli_old", actor_roles: "[]", action: "payment.read",
  resource_type: "payment", resource_id: `pi_old${n}xxxxxxxx`, outcome: "allowed", code: null, amount: null, currency: null,
  request_id: `r${n}`, trace_id: null, ip: "127.0.0.1", ...extra,
});

describe("migrating a payments database to tenants", () => {
  it("moves every row into the default tenant and keeps the sealed chain verifying", async () => {
    const db = env.UPGRADE_DB;
    const before = env.TEST_MIGRATIONS.filter((m) => !/_tenants/.test(m.name));
    const tenants = env.TEST_MIGRATIONS.filter((m) => /_tenants/.test(m.name));
    expect(tenants.length).toBe(1);
    await applyD1Migrations(db, before);
    // Rows as the code before tenants wrote them.
    await db.batch([
      db.prepare(
        `INSERT INTO payments (id, status, amount, amount_captured, amount_refunded, amount_refund_pending, currency, capture_method, payment_method_id,
          metadata, version, created_at, updated_at, created_by, created_by_client)
         VALUES ('pi_oldxxxxxxxx', 'succeeded', 100, 100, 0, 0, 'USD', 'automatic', 'pm_oldxxxxxxxx', '{}', 1, 't', 't', 'old', 'cli_old')`,
      ),
      db.prepare(
        `INSERT INTO idempotency_keys (client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at)
         VALUES ('cli_old', 'k-old', 'h', 'done', 201, '{"id":"pi_oldxxxxxxxx"}', 1, 2, 9999999999999)`,
      ),
      db.prepare("INSERT INTO ledger_lines (entry_id, payment_id, kind, account, currency, amount, actor, request_id, created_at) VALUES ('le_1', 'pi_oldxxxxxxxx', 'capture', 'revenue', 'USD', -100, 'old', 'r', 't')"),
      ...[1, 2, 3].map((n) => auditInsert(db, PAYMENTS_CHAIN.table, record(n))),
    ]);
    await sealPending(db, PAYMENTS_CHAIN, new Date());
    const sealed = await verifyChain(db, PAYMENTS_CHAIN);
    expect(sealed).toMatchObject({ ok: true, records: 3, complete: true });

    await applyD1Migrations(db, tenants);

    for (const table of ["payments", "idempotency_keys", "ledger_lines", "audit_events"]) {
      const rows = await db.prepare(`SELECT DISTINCT tenant_id FROM ${table}`).all<{ tenant_id: string }>();
      expect(rows.results, table).toEqual([{ tenant_id: "ten_default" }]);
    }
    // The key kept its stored answer, now under the default tenant.
    expect(await db.prepare("SELECT response_body FROM idempotency_keys WHERE tenant_id = 'ten_default' AND client_id = 'cli_old' AND key = 'k-old'").first("response_body")).toBe(
      '{"id":"pi_oldxxxxxxxx"}',
    );
    // Records sealed before the column existed verify as they were sealed.
    expect(await verifyChain(db, PAYMENTS_CHAIN)).toMatchObject({ ok: true, records: 3, head: sealed.ok ? sealed.head : "", complete: true });

    // New records of two tenants extend the same chain; the non-default tenant is hashed.
    await db.batch([auditInsert(db, PAYMENTS_CHAIN.table, { ...record(4), tenant_id: "ten_alpha" }), auditInsert(db, PAYMENTS_CHAIN.table, { ...record(5), tenant_id: "ten_default" })]);
    expect(await sealPending(db, PAYMENTS_CHAIN, new Date())).toMatchObject({ sealed: 2 });
    expect(await verifyChain(db, PAYMENTS_CHAIN)).toMatchObject({ ok: true, records: 5, complete: true });

    // The triggers cover the new column: no record changes tenant, sealed or pending.
    await expect(db.prepare("UPDATE audit_events SET tenant_id = 'ten_beta' WHERE seq = 4").run()).rejects.toThrow(/append-only/);
    await db.batch([auditInsert(db, PAYMENTS_CHAIN.table, { ...record(6), tenant_id: "ten_alpha" })]);
    await expect(
      db.prepare("UPDATE audit_events SET tenant_id = 'ten_beta', prev_hash = 'x', hash = 'y', sealed_at = 'z' WHERE seq = 6").run(),
    ).rejects.toThrow(/append-only/);
    await expect(db.prepare("DELETE FROM audit_events WHERE seq = 1").run()).rejects.toThrow(/append-only/);

    // An insider who moves records between tenants behind the triggers' back breaks the chain, either way.
    for (const [seq, tenant] of [
      [4, "ten_default"],
      [1, "ten_alpha"],
    ] as const) {
      const original = await db.prepare("SELECT tenant_id FROM audit_events WHERE seq = ?").bind(seq).first<string>("tenant_id");
      await withoutGuards(db, PAYMENTS_CHAIN.table, () => db.prepare("UPDATE audit_events SET tenant_id = ? WHERE seq = ?").bind(tenant, seq).run());
      expect(await verifyChain(db, PAYMENTS_CHAIN)).toMatchObject({ ok: false, broken_at: seq, reason: "hash_mismatch" });
      await withoutGuards(db, PAYMENTS_CHAIN.table, () => db.prepare("UPDATE audit_events SET tenant_id = ? WHERE seq = ?").bind(original, seq).run());
    }
    expect(await verifyChain(db, PAYMENTS_CHAIN)).toMatchObject({ ok: true, records: 5 });
  });
});
