import type { Limits } from "./schemas/thresholds";
import type { Thresholds } from "./schemas/thresholds";

interface Row {
  version: number;
  limits: string;
  set_at: string;
  set_by: string;
  reason: string;
}

/** One tenant's versioned alarm limits in D1; version 0 (no limits) until the first change. */
export class ThresholdStore {
  constructor(
    private readonly db: D1Database,
    private readonly tenantId: string,
  ) {}

  async current(deviceId: string): Promise<Thresholds> {
    const row = await this.db
      .prepare("SELECT version, limits, set_at, set_by, reason FROM thresholds WHERE device_id = ? AND tenant_id = ? ORDER BY version DESC LIMIT 1")
      .bind(deviceId, this.tenantId)
      .first<Row>();
    if (!row) return { device_id: deviceId, version: 0, limits: {}, set_at: null, set_by: null, reason: null };
    return { device_id: deviceId, ...row, limits: JSON.parse(row.limits) as Limits };
  }

  /** Fails on the primary key if another change took this version first (the whole batch rolls back). */
  insert(t: { deviceId: string; version: number; limits: Limits; setAt: string; setBy: string; reason: string }): D1PreparedStatement {
    return this.db
      .prepare("INSERT INTO thresholds (device_id, tenant_id, version, limits, set_at, set_by, reason) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind(t.deviceId, this.tenantId, t.version, JSON.stringify(t.limits), t.setAt, t.setBy, t.reason);
  }
}
