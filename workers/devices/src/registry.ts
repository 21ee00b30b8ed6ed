import type { Device, DeviceInput } from "./schemas/device";

interface DeviceRow {
  id: string;
  tenant_id: string;
  udi: string;
  model: string;
  manufacturer: string;
  serial: string;
  type: string;
  status: string;
  client_id: string;
  created_at: string;
  created_by: string;
  decommissioned_at: string | null;
  erased_at: string | null;
}

export function deviceView({ tenant_id: _tenant, erased_at: _erased, ...r }: DeviceRow): Device {
  return { ...r, status: r.status === "decommissioned" ? "decommissioned" : "active" };
}

/**
 * One tenant's device registry in D1 (reads and the statements that audited writes
 * commit). Every statement is scoped by the tenant: another tenant's device id
 * reads as missing, and nothing here can reach or change it.
 */
export class Registry {
  constructor(
    private readonly db: D1Database,
    private readonly tenantId: string,
  ) {}

  async get(id: string): Promise<Device | undefined> {
    const row = await this.db.prepare("SELECT * FROM devices WHERE id = ? AND tenant_id = ?").bind(id, this.tenantId).first<DeviceRow>();
    return row ? deviceView(row) : undefined;
  }

  /** Which identifier, if any, this tenant already registered (UDI, or serial of the same maker). */
  async conflict(input: DeviceInput): Promise<"udi" | "serial" | null> {
    const row = await this.db
      .prepare(
        "SELECT (SELECT 1 FROM devices WHERE tenant_id = ?4 AND udi = ?1) AS udi, (SELECT 1 FROM devices WHERE tenant_id = ?4 AND manufacturer = ?2 AND serial = ?3) AS serial",
      )
      .bind(input.udi, input.manufacturer, input.serial, this.tenantId)
      .first<{ udi: number | null; serial: number | null }>();
    if (row?.udi) return "udi";
    if (row?.serial) return "serial";
    return null;
  }

  async list(q: { status?: string | undefined; limit: number; cursor?: string | undefined }): Promise<Device[]> {
    const where: string[] = ["tenant_id = ?"];
    const binds: string[] = [this.tenantId];
    if (q.status) {
      where.push("status = ?");
      binds.push(q.status);
    }
    if (q.cursor) {
      where.push("id > ?");
      binds.push(q.cursor);
    }
    const { results } = await this.db
      .prepare(`SELECT * FROM devices WHERE ${where.join(" AND ")} ORDER BY id LIMIT ?`)
      .bind(...binds, q.limit)
      .all<DeviceRow>();
    return results.map(deviceView);
  }

  insert(d: Device): D1PreparedStatement {
    return this.db
      .prepare(
        `INSERT INTO devices (id, tenant_id, udi, model, manufacturer, serial, type, status, client_id, created_at, created_by, decommissioned_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(d.id, this.tenantId, d.udi, d.model, d.manufacturer, d.serial, d.type, d.status, d.client_id, d.created_at, d.created_by, d.decommissioned_at);
  }

  /**
   * Statements for an audited decommission. The first fails (json() of a malformed
   * value raises) unless the device is still active, so when two requests race, the
   * loser's whole batch, audit record included, rolls back: no record of a change
   * that did not happen.
   */
  decommission(id: string, at: string): D1PreparedStatement[] {
    return [
      this.db
        .prepare("SELECT json(CASE WHEN (SELECT status FROM devices WHERE id = ? AND tenant_id = ?) = 'active' THEN '1' ELSE 'not active' END)")
        .bind(id, this.tenantId),
      this.db.prepare("UPDATE devices SET status = 'decommissioned', decommissioned_at = ? WHERE id = ? AND tenant_id = ?").bind(at, id, this.tenantId),
    ];
  }
}
