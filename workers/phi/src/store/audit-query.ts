import { listAudit, type ListPage } from "../../../../shared/audit/list";
import { AUDIT_TABLE } from "../audit/trail";

export interface AuditFilter {
  patient?: string;
  actor?: string;
  since?: string;
  until?: string;
  /** Records after this seq (cursor). */
  after: number;
  limit: number;
}

export interface AuditRow {
  seq: number;
  /** The seal columns: null while the record waits for its sealer. */
  prev_hash: string | null;
  hash: string | null;
  sealed_at: string | null;
  at: string;
  actor_sub: string;
  actor_client: string;
  actor_roles: string;
  token_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  patient_ids: string;
  outcome: string;
  reason: string;
  purpose_of_use: string;
  client_ip: string;
  request_id: string;
  trace_id: string;
}

/** One page of audit records in chain order, filtered (shared/audit listAudit). */
export function queryAudit(db: D1Database, f: AuditFilter): Promise<ListPage<AuditRow>> {
  return listAudit<AuditRow>(db, AUDIT_TABLE, {
    after: f.after,
    limit: f.limit,
    filters: [
      f.patient ? { kind: "inList", column: "patient_ids", value: f.patient } : undefined,
      f.actor ? { kind: "anyEq", columns: ["actor_sub", "actor_client"], value: f.actor } : undefined,
      f.since ? { kind: "gte", column: "at", value: f.since } : undefined,
      f.until ? { kind: "lte", column: "at", value: f.until } : undefined,
    ],
  });
}
