import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { auditInsert } from "../../../../shared/audit/append";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { scopeOf } from "../store/scope";
import { auditState } from "./middleware";
import { sealerName, shardSealers } from "./sealer";
import { AUDIT_TABLE, auditColumns, countRecord, type AuditEvent } from "./trail";

/**
 * One audit record per Bundle entry (HIPAA 164.312(b)): each entry of a batch or
 * transaction is an access of its own, recorded like the same request sent alone,
 * in the D1 batch that carries its data. The caller commits the inserts; then
 * `entriesRecorded` marks the request recorded, counts and nudges the sealer.
 */
export function entryRecord(c: Context<PhiEnv>, ev: AuditEvent, now: Date): D1PreparedStatement {
  return auditInsert(scopeOf(c).db, AUDIT_TABLE, auditColumns(auditState(c).actor, ev, now));
}

export function entriesRecorded(c: Context<PhiEnv>, events: readonly AuditEvent[]): void {
  if (events.length === 0) return;
  auditState(c).done = true;
  for (const ev of events) countRecord(ev.action, ev.outcome);
  const shard = c.get("principal").shard;
  nudgeFromRequest(c, shardSealers(c.env.AUDIT_SEALER, shard), sealerName(shard), c.env.AUDIT_SEAL_DELAY_MS);
}
