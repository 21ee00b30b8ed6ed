import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditInsert } from "../../../shared/audit/append";
import { sealPending } from "../../../shared/audit/seal";
import { verifyChain } from "../../../shared/audit/verify";
import { withoutGuards } from "../../../shared/testing/audit";
import { sessionName } from "../src/session/stub";
import { DEVICE_CHAIN } from "./helpers";

/**
 * The tenants migration on a devices database written before tenants: rows move into the
 * default tenant, the Part 11 chain sealed before the column still verifies, the triggers
 * cover the new column, and the default tenant's session objects keep their names.
 */
const record = (n: number, extra: Record<string, string> = {}) => ({
  device_id: "dev_oldDevice000001", time: `2026-11-2${n}T10:00:00.000Z`, action: "thresholds.update", actor_sub: "old", actor_client_id: "cli_old",
  old_value: null, new_value: `{"version":${n}}`, reason: "r", request_id: `r${n}`, ...extra,
});

describe("migrating a devices database to tenants", () => {
  it("moves every row into the default tenant and keeps the sealed chain verifying and protected", async () => {
    const db = env.UPGRADE_DB;
    const tenants = env.TEST_MIGRATIONS.filter((m) => /_tenants/.test(m.name));
    expect(tenants.length).toBe(1);
    await applyD1Migrations(db, env.TEST_MIGRATIONS.filter((m) => !/_tenants/.test(m.name)));
    await db.batch([
      db.prepare(
        `INSERT INTO devices (id, udi, model, manufacturer, serial, type, status, client_id, created_at, created_by)
         VALUES ('dev_oldDevice000001', 'udi-old', 'm', 'Acme', 'SN-old', 'bedside_monitor', 'active', 'cli_old', 't', 'old')`,
      ),
      db.prepare("INSERT INTO thresholds (device_id, version, limits, set_at, set_by, reason) VALUES ('dev_oldDevice000001', 1, '{}', 't', 'old', 'r')"),
      ...[1, 2].map((n) => auditInsert(db, DEVICE_CHAIN.table, record(n))),
    ]);
    await sealPending(db, DEVICE_CHAIN, new Date());
    const sealed = await verifyChain(db, DEVICE_CHAIN);
    expect(sealed).toMatchObject({ ok: true, records: 2 });

    await applyD1Migrations(db, tenants);
    for (const table of ["devices", "thresholds", "device_audit"]) {
      expect((await db.prepare(`SELECT DISTINCT tenant_id FROM ${table}`).all()).results, table).toEqual([{ tenant_id: "ten_default" }]);
    }
    expect(await verifyChain(db, DEVICE_CHAIN)).toMatchObject({ ok: true, records: 2, head: sealed.ok ? sealed.head : "" });
    // The same UDI and serial may now be registered by another tenant (unique per tenant).
    await db
      .prepare(
        `INSERT INTO devices (id, tenant_id, udi, model, manufacturer, serial, type, status, client_id, created_at, created_by)
         VALUES ('dev_newDevice000001', 'ten_alpha', 'udi-old', 'm', 'Acme', 'SN-old', 'bedside_monitor', 'active', 'cli_new', 't', 'new')`,
      )
      .run();
    await db.batch([auditInsert(db, DEVICE_CHAIN.table, { ...record(3), tenant_id: "ten_alpha" })]);
    await sealPending(db, DEVICE_CHAIN, new Date());
    expect(await verifyChain(db, DEVICE_CHAIN)).toMatchObject({ ok: true, records: 3 });

    await expect(db.prepare("UPDATE device_audit SET tenant_id = 'ten_beta' WHERE seq = 3").run()).rejects.toThrow(/append-only/);
    await withoutGuards(db, DEVICE_CHAIN.table, () => db.prepare("UPDATE device_audit SET tenant_id = 'ten_beta' WHERE seq = 1").run());
    expect(await verifyChain(db, DEVICE_CHAIN)).toMatchObject({ ok: false, broken_at: 1, reason: "hash_mismatch" });

    // Sessions of the default tenant keep their objects (named by the device id, as before tenants).
    expect(sessionName("ten_default", "dev_oldDevice000001")).toBe("dev_oldDevice000001");
    expect(sessionName("ten_alpha", "dev_oldDevice000001")).toBe("ten_alpha/dev_oldDevice000001");
  });
});
