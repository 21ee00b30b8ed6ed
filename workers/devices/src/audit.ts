import type { Context } from "hono";
import { auditInsert, commitWithRecord } from "../../../shared/audit/append";
import type { ChainSpec } from "../../../shared/audit/seal";
import { nudgeFromRequest } from "../../../shared/audit/sealer";
import type { AppVariables } from "../../../shared/http";
import type { Principal } from "../../../shared/principal";

/** The devices chain (21 CFR Part 11 trail): its records and its checkpoints (shared/audit). */
export const DEVICE_CHAIN: ChainSpec = { table: "device_audit", checkpoints: "device_audit_checkpoints" };

export type AuditAction = "device.register" | "device.decommission" | "device.erase" | "thresholds.update";

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
 * change and its record are written together or not at all (one round trip, no
 * chain head read, no retry); the chain's sealer links it within the delay.
 */
export async function auditChange(
  c: Context<{ Bindings: Env; Variables: AppVariables }>,
  e: AuditEntry,
  statements: D1PreparedStatement[],
): Promise<D1Result[]> {
  const db = c.env.DB;
  const insert = auditInsert(db, DEVICE_CHAIN.table, {
    device_id: e.deviceId,
    // The actor's tenant (the device's: the registry only finds a tenant's own devices).
    tenant_id: e.actor.tenantId,
    time: e.time,
    action: e.action,
    actor_sub: e.actor.sub,
    actor_client_id: e.actor.clientId,
    old_value: e.oldValue === null || e.oldValue === undefined ? null : JSON.stringify(e.oldValue),
    new_value: e.newValue === null || e.newValue === undefined ? null : JSON.stringify(e.newValue),
    reason: e.reason,
    request_id: e.requestId,
  });
  const results = await commitWithRecord(db, DEVICE_CHAIN.table, statements, insert);
  nudgeFromRequest(c, c.env.AUDIT_SEALER, DEVICE_CHAIN.table, c.env.AUDIT_SEAL_DELAY_MS);
  return results;
}
