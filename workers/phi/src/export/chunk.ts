import { auditInsert, commitWithRecord, sqlValue } from "../../../../shared/audit/append";
import type { ChainValue } from "../../../../shared/audit/hash";
import type { Keyring } from "../../../../shared/crypto";
import { AUDIT_TABLE, auditColumns, countRecord, type AuditActor } from "../audit/trail";
import type { ResourceType } from "../fhir/search-params";
import { presentVersion } from "../service/present";
import type { VersionRow } from "../store/resources";

/**
 * One chunk of an export: the next `size` patients after `after` (server ids, in id
 * order), with every exported resource of theirs, read in ONE D1 batch together with
 * the chunk's audit record (a disclosure: HIPAA 164.312(b), 164.528). The record's
 * patient list is decided by SQL over the same snapshot, so no resource leaves the
 * database without the record naming its patient, and the record never names one
 * that was not read. Resources are taken as they stood at the export's transaction
 * time: a version written later is not exported (a later create is left out, a later
 * update exports the version before it), so a chunk read again after a restart reads
 * the same rows.
 */
export interface ChunkSpec {
  jobId: string;
  types: readonly ResourceType[];
  since: string | null;
  transactionTime: string;
  after: string;
  size: number;
}

export interface ChunkRead {
  /** The last patient id this chunk covers; null when no patient was left (the export is done). */
  upper: string | null;
  /** Patients the chunk covered (deleted ones and ones unchanged since `_since` included): for progress. */
  covered: number;
  /** NDJSON lines per type, each a resource (no trailing newline). */
  lines: Map<ResourceType, string[]>;
  /** Patients whose resources this chunk exported. */
  patients: string[];
}

const COLUMNS = "v.resource_type, v.id, v.version_id, v.last_updated, v.deleted, v.sealed, v.patient_id";

interface Clause {
  sql: string;
  binds: ChainValue[];
}

/** The id of the last patient of the chunk (NULL when none is left): the tenant's patients that existed at the transaction time. */
function upperBound(tenant: string, spec: ChunkSpec, aggregate = "MAX(id)"): Clause {
  return {
    sql: `(SELECT ${aggregate} FROM (SELECT id FROM resource_versions INDEXED BY resource_versions_version WHERE tenant_id = ? AND resource_type = 'Patient' AND version_id = 1 AND last_updated <= ? AND id > ? ORDER BY id LIMIT ?))`,
    binds: [tenant, spec.transactionTime, spec.after, spec.size],
  };
}

/**
 * Resources of `type` that belong to the chunk's patients, in the version current at the transaction time, not
 * deleted: `FROM` and `WHERE` of a select. Patients by their own id (the unique version index), Observations by
 * their subject (the patient index). The indexes are named: without them SQLite picked the `_lastUpdated` index
 * for the snapshot's `last_updated <=` and scanned every version of the type for every row (a 10,000-patient
 * export took 3x longer, and longer the more was stored).
 */
function selection(tenant: string, type: ResourceType, spec: ChunkSpec): Clause {
  const upper = upperBound(tenant, spec);
  const key = type === "Patient" ? "v.id" : "v.patient_id";
  const from = `resource_versions v INDEXED BY ${type === "Patient" ? "resource_versions_version" : "resource_versions_patient"}`;
  const since = spec.since === null ? "" : " AND v.last_updated > ?";
  return {
    sql:
      `${from} WHERE v.tenant_id = ? AND v.resource_type = ? AND ${key} > ? AND ${key} <= ${upper.sql} AND v.deleted = 0` +
      ` AND v.version_id = (SELECT MAX(w.version_id) FROM resource_versions w INDEXED BY resource_versions_version WHERE w.tenant_id = v.tenant_id AND w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?)` +
      since,
    binds: [tenant, type, spec.after, ...upper.binds, spec.transactionTime, ...(spec.since === null ? [] : [spec.since])],
  };
}

export async function readChunk(db: D1Database, ring: Keyring, actor: AuditActor, spec: ChunkSpec, now: Date): Promise<ChunkRead> {
  // Only the asking client's tenant's resources: the same scoping as every other read (store/scope.ts).
  const tenant = actor.tenantId;
  const upper = upperBound(tenant, spec);
  const covered = upperBound(tenant, spec, "COUNT(*)");
  const statements: D1PreparedStatement[] = [db.prepare(`SELECT ${upper.sql} AS upper, ${covered.sql} AS covered`).bind(...upper.binds, ...covered.binds)];
  const clauses = spec.types.map((t) => selection(tenant, t, spec));
  for (const [i, clause] of clauses.entries()) {
    const order = spec.types[i] === "Patient" ? "v.id" : "v.patient_id, v.id";
    statements.push(db.prepare(`SELECT ${COLUMNS} FROM ${clause.sql} ORDER BY ${order}`).bind(...clause.binds));
  }
  // A UNION (not an OR) so each part keeps its index; UNION also removes duplicate patients.
  const any = clauses.map((c) => `SELECT v.patient_id AS pid FROM ${c.sql}`).join(" UNION ");
  const patientIds = sqlValue(
    `SELECT COALESCE(group_concat(pid, ','), '') FROM (${any} ORDER BY pid)`,
    ...clauses.flatMap((c) => c.binds),
  );
  const columns = auditColumns(
    actor,
    { action: "export-disclose", resourceType: spec.types.join(","), resourceId: spec.jobId, patientIds: [], outcome: "success", reason: "" },
    now,
  );
  const insert = auditInsert(db, AUDIT_TABLE, { ...columns, patient_ids: patientIds });
  const [head, ...data] = await commitWithRecord(db, AUDIT_TABLE, statements, insert);
  countRecord("export-disclose", "success");

  const page = head?.results[0] as { upper: string | null; covered: number } | undefined;
  const lines = new Map<ResourceType, string[]>();
  const patients = new Set<string>();
  for (const [i, type] of spec.types.entries()) {
    const rows = (data[i]?.results ?? []) as VersionRow[];
    const out: string[] = [];
    for (const row of rows) {
      out.push(JSON.stringify(await presentVersion(ring, row)));
      patients.add(row.patient_id);
    }
    lines.set(type, out);
  }
  return { upper: page?.upper ?? null, covered: page?.covered ?? 0, lines, patients: [...patients] };
}

/** How many patients the export will cover (for progress): the tenant's that existed at the transaction time. */
export async function countPatients(db: D1Database, tenant: string, transactionTime: string): Promise<number> {
  const row = await db
    .prepare("SELECT COUNT(*) AS n FROM resource_versions WHERE tenant_id = ? AND resource_type = 'Patient' AND version_id = 1 AND last_updated <= ?")
    .bind(tenant, transactionTime)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
