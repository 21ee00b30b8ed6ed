import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";

/**
 * The tenants migration on a database that already holds clients: the migrations before it are
 * applied to an empty database (this file's own copy of FAULT_DB: storage is per test file), clients
 * are written as the service wrote them then, and the tenants migration runs over them.
 */
describe("migration 0003_tenants on existing data", () => {
  it("creates the default tenant on shard 0 and moves every existing client into it; the bootstrap admin is no row", async () => {
    const db = env.FAULT_DB;
    const before = env.TEST_MIGRATIONS.filter((m) => m.name < "0003");
    const tenantsMigration = env.TEST_MIGRATIONS.filter((m) => m.name.startsWith("0003"));
    expect(tenantsMigration.length).toBe(1);
    await applyD1Migrations(db, before);
    const insert = db.prepare(
      "INSERT INTO clients (id, name, secret_hash, roles, scopes, device_id, disabled, created_at, created_by, disabled_at) VALUES (?, ?, '', '[]', '[]', ?, ?, '2026-01-01T00:00:00.000Z', 'test', NULL)",
    );
    await db.batch([insert.bind("cli_old_admin", "old admin", null, 0), insert.bind("cli_old_device", "old device", "dev_1", 0), insert.bind("cli_old_disabled", "old disabled", null, 1)]);

    await applyD1Migrations(db, env.TEST_MIGRATIONS);

    const tenants = await db.prepare("SELECT id, name, shard, offboarded_at FROM tenants").all();
    expect(tenants.results).toEqual([{ id: DEFAULT_TENANT_ID, name: "Default", shard: 0, offboarded_at: null }]);
    const clients = await db.prepare("SELECT id, tenant_id, disabled FROM clients ORDER BY id").all();
    expect(clients.results).toEqual([
      { id: "cli_old_admin", tenant_id: DEFAULT_TENANT_ID, disabled: 0 },
      { id: "cli_old_device", tenant_id: DEFAULT_TENANT_ID, disabled: 0 },
      { id: "cli_old_disabled", tenant_id: DEFAULT_TENANT_ID, disabled: 1 },
    ]);
    // The bootstrap admin comes from configuration, never from this table: it stays a platform client.
    const boot = await db.prepare("SELECT COUNT(*) AS n FROM clients WHERE id = ?").bind(env.BOOTSTRAP_CLIENT_ID).first<{ n: number }>();
    expect(boot?.n).toBe(0);
  });
});
