import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { auditInsert, commitWithRecord, type AuditValue, type SqlValue } from "../../../../shared/audit/append";
import type { ChainSpec } from "../../../../shared/audit/seal";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { counter } from "../../../../shared/metrics";
import type { Principal } from "../../../../shared/principal";
import { scopeOf } from "../store/scope";
import type { AuditAction, AuditOutcome } from "./describe";
import { sealerName, shardSealers } from "./sealer";

/** phi's chain: its records and its checkpoints (shared/audit). */
export const PHI_CHAIN: ChainSpec = { table: "phi_audit", checkpoints: "phi_audit_checkpoints" };
export const AUDIT_TABLE = PHI_CHAIN.table;
/**
 * Which sealed record names which patient (migration 0009: filled by a trigger as the sealer seals), read by the
 * listing by patient (store/audit-query.ts). Derived from the trail, and like it never moved or deleted.
 */
export const AUDIT_PATIENTS_TABLE = "phi_audit_patients";

const auditRecords = counter("phi_audit_records_total", "Audit records written, by action and outcome");

export function countRecord(action: AuditAction, outcome: AuditOutcome): void {
  auditRecords.add(1, { action, outcome });
}

/** Who is asking, and why: everything the record needs besides the access itself. */
export interface AuditActor {
  /** The tenant the access happened in: its auditors (and only they) see the record. */
  tenantId: string;
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

/** Columns SQL decides in the record's own statement, from the data of the same batch. */
export interface DecidedColumns {
  outcome?: AuditValue;
  reason?: AuditValue;
  patient_ids?: AuditValue;
  /** The one row source those values read (auditInsert's `from`). */
  from?: SqlValue;
}

export function actorFrom(p: Principal, extra: { purposeOfUse: string; requestId: string; traceId: string }): AuditActor {
  return {
    tenantId: p.tenantId,
    sub: p.sub,
    clientId: p.clientId,
    roles: p.roles,
    tokenId: p.tokenId,
    clientIp: p.ip,
    ...extra,
  };
}

/** The audit row's data columns (every one, no defaults: the chain hash covers them all). */
export function auditColumns(actor: AuditActor, ev: AuditEvent, now: Date): Record<string, string> {
  return {
    at: now.toISOString(),
    tenant_id: actor.tenantId,
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
 * Writes one audit record with `statements` (the data read or written) in one D1
 * batch: both or neither (HIPAA 164.312(b), 164.312(c)(1)); one round trip, no
 * chain head read, no retry. Throws ApiError 503 when the record cannot be
 * written; the caller then returns no PHI. Returns the statements' results.
 * The chain's sealer is nudged from this request's own waitUntil.
 */
export async function appendAudit(
  c: Context<PhiEnv>,
  actor: AuditActor,
  ev: AuditEvent,
  now: Date,
  statements: D1PreparedStatement[] = [],
  decided: DecidedColumns = {},
): Promise<D1Result[]> {
  const { db } = scopeOf(c);
  const { from, ...values } = decided;
  const insert = auditInsert(db, AUDIT_TABLE, { ...auditColumns(actor, ev, now), ...values }, from);
  const results = await commitWithRecord(db, AUDIT_TABLE, statements, insert);
  // An outcome SQL decided is counted by the caller, which learns it from the batch.
  if (decided.outcome === undefined) countRecord(ev.action, ev.outcome);
  const shard = c.get("principal").shard;
  nudgeFromRequest(c, shardSealers(c.env.AUDIT_SEALER, shard), sealerName(shard), c.env.AUDIT_SEAL_DELAY_MS);
  return results;
}
