import { appendChained, type AppendResult } from "../../../../shared/audit-chain";
import { counter } from "../../../../shared/metrics";
import type { Principal } from "../../../../shared/principal";
import type { AuditAction, AuditOutcome } from "./describe";

export const AUDIT_TABLE = "phi_audit";

/**
 * Optimistic appends retry on a lost race for the next seq. Under a burst of N
 * concurrent writers the last one may lose N-1 races, so the bound is well above
 * the concurrency we expect per database; past it the request fails with 503.
 */
const MAX_ATTEMPTS = 300;

const auditRecords = counter("phi_audit_records_total", "Audit records written, by action and outcome");

/** Who is asking, and why: everything the record needs besides the access itself. */
export interface AuditActor {
  sub: string;
  clientId: string;
  roles: string[];
  tokenId: string;
  clientIp: string;
  purposeOfUse: string;
  requestId: string;
  traceId: string;
}

export interface AuditEvent {
  action: AuditAction;
  resourceType: string;
  resourceId: string;
  patientIds: string[];
  outcome: AuditOutcome;
  /** A stable error code for anything but success ("" on success); never a PHI value. */
  reason: string;
}

export function actorFrom(p: Principal, extra: { purposeOfUse: string; requestId: string; traceId: string }): AuditActor {
  return {
    sub: p.sub,
    clientId: p.clientId,
    roles: p.roles,
    tokenId: p.tokenId,
    clientIp: p.ip,
    ...extra,
  };
}

/** The audit row's columns (every one, no defaults: the chain hash covers them all). */
export function auditColumns(actor: AuditActor, ev: AuditEvent, now: Date): Record<string, string> {
  return {
    at: now.toISOString(),
    actor_sub: actor.sub,
    actor_client: actor.clientId,
    actor_roles: actor.roles.join(","),
    token_id: actor.tokenId,
    action: ev.action,
    resource_type: ev.resourceType,
    resource_id: ev.resourceId,
    patient_ids: [...new Set(ev.patientIds)].join(","),
    outcome: ev.outcome,
    reason: ev.reason,
    purpose_of_use: actor.purposeOfUse,
    client_ip: actor.clientIp,
    request_id: actor.requestId,
    trace_id: actor.traceId,
  };
}

/**
 * Appends one audit record, committing `statements` (the data write) in the same
 * D1 batch: both or neither (HIPAA 164.312(b), 164.312(c)(1)). Throws ApiError 503
 * when the record cannot be written; the caller then returns no PHI.
 */
export async function appendAudit(
  db: D1Database,
  actor: AuditActor,
  ev: AuditEvent,
  now: Date,
  statements: D1PreparedStatement[] = [],
): Promise<AppendResult> {
  // Appends from one isolate take turns inside appendChained.
  const r = await appendChained(db, { table: AUDIT_TABLE, columns: auditColumns(actor, ev, now), statements, maxAttempts: MAX_ATTEMPTS });
  auditRecords.add(1, { action: ev.action, outcome: ev.outcome });
  return r;
}
