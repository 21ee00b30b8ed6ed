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
  prev_hash: string;
  hash: string;
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

/** Audit records in chain order, filtered; `limit` rows at most. */
export async function queryAudit(db: D1Database, f: AuditFilter): Promise<AuditRow[]> {
  let sql = `SELECT * FROM ${AUDIT_TABLE} WHERE seq > ?`;
  const binds: (string | number)[] = [f.after];
  if (f.patient) {
    // patient_ids is a comma-separated list of server ids (no commas inside an id).
    sql += " AND instr(',' || patient_ids || ',', ',' || ? || ',') > 0";
    binds.push(f.patient);
  }
  if (f.actor) {
    sql += " AND (actor_sub = ? OR actor_client = ?)";
    binds.push(f.actor, f.actor);
  }
  if (f.since) {
    sql += " AND at >= ?";
    binds.push(f.since);
  }
  if (f.until) {
    sql += " AND at <= ?";
    binds.push(f.until);
  }
  sql += " ORDER BY seq LIMIT ?";
  binds.push(f.limit);
  const { results } = await db
    .prepare(sql)
    .bind(...binds)
    .all<AuditRow>();
  return results;
}
