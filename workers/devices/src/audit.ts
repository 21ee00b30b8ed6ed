import { appendChained, type AppendResult } from "../../../shared/audit-chain";
import type { Principal } from "../../../shared/principal";

export type AuditAction = "device.register" | "device.decommission" | "thresholds.update";

export interface AuditEntry {
  deviceId: string;
  action: AuditAction;
  actor: Principal;
  oldValue: unknown;
  newValue: unknown;
  reason: string;
  requestId: string;
  /** Server UTC time of the change (21 CFR 11.10(e): computer-generated time stamps). */
  time: string;
}

/**
 * Appends one Part 11 record and commits `statements` in the same D1 batch: the
 * change and its record are written together or not at all.
 */
export function auditChange(db: D1Database, e: AuditEntry, statements: D1PreparedStatement[]): Promise<AppendResult> {
  return appendChained(db, {
    table: "device_audit",
    columns: {
      device_id: e.deviceId,
      time: e.time,
      action: e.action,
      actor_sub: e.actor.sub,
      actor_client_id: e.actor.clientId,
      old_value: e.oldValue === null || e.oldValue === undefined ? null : JSON.stringify(e.oldValue),
      new_value: e.newValue === null || e.newValue === undefined ? null : JSON.stringify(e.newValue),
      reason: e.reason,
      request_id: e.requestId,
    },
    statements,
  });
}
