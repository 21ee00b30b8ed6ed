import { listAudit, type ListOptions, type ListPage } from "../../../../shared/audit/list";
import { AUDIT_PATIENTS_TABLE, AUDIT_TABLE } from "../audit/trail";
import type { Scope } from "./scope";

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
  tenant_id: string;
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

/** One page of the caller's tenant's audit records: the chain is the database's, the trail a tenant reads is its own. */
export function queryAudit(scope: Scope, f: AuditFilter): Promise<ListPage<AuditRow>> {
  return listAudit<AuditRow>(scope.db, AUDIT_TABLE, auditListOptions(scope.tenant, f));
}

/** The listing's options for a tenant's filter (exported for the query-plan tests). */
export function auditListOptions(tenant: string, f: AuditFilter): ListOptions {
  return {
    after: f.after,
    limit: f.limit,
    filters: [
      { kind: "eq", column: "tenant_id", value: tenant },
      f.patient ? { kind: "inList", column: "patient_ids", value: f.patient, links: { table: AUDIT_PATIENTS_TABLE, tenant } } : undefined,
      f.actor ? { kind: "anyEq", columns: ["actor_sub", "actor_client"], value: f.actor } : undefined,
      f.since ? { kind: "gte", column: "at", value: f.since } : undefined,
      f.until ? { kind: "lte", column: "at", value: f.until } : undefined,
    ],
  };
}
