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
 *
 * A read takes at most `rows` resources of each type: a chunk whose patients hold more
 * (one patient with years of device Observations) is read in several parts, each type
 * resuming after the last resource of the part before (`progress`, in (patient, id)
 * order, which the patient index serves without sorting), so what one run holds in
 * memory is bounded whatever a patient's history.
 */
export interface ChunkSpec {
  jobId: string;
  types: readonly ResourceType[];
  since: string | null;
  transactionTime: string;
  after: string;
  size: number;
  /** Resources of each type one read takes at most. */
  rows: number;
  /** Where each type stands within this chunk's patients (absent: from their start). */
  progress?: ChunkProgress;
}

/** Where a type stands within a chunk: its last resource exported (its patient and its id). */
export interface RowCursor {
  patient: string;
  id: string;
}

/** Per type within a chunk: the last resource exported, or `done`. */
export type ChunkProgress = Partial<Record<ResourceType, RowCursor | "done">>;

export interface ChunkRead {
  /** The last patient id this chunk covers; null when no patient was left (the export is done). */
  upper: string | null;
  /** Patients the chunk covered (deleted ones and ones unchanged since `_since` included): for progress. */
  covered: number;
  /** NDJSON lines per type, each a resource (no trailing newline). */
  lines: Map<ResourceType, string[]>;
  /** Patients whose resources this read exported. */
  patients: string[];
  /** Null when the chunk is done (every type read to its end); otherwise where the next read of the same chunk resumes. */
  progress: ChunkProgress | null;
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
 * deleted, after `from` (the last one a read before exported): `FROM` and `WHERE` of a select, and its order.
 * Patients by their own id (the unique version index), Observations by their subject (the patient index,
 * tenant, patient, type, id: its order is the export's, and `from` is one seek into it). The indexes are named:
 * without them SQLite picked the `_lastUpdated` index for the snapshot's `last_updated <=` and scanned every
 * version of the type for every row (a 10,000-patient export took 3x longer, and longer the more was stored).
 * The Observations' type test is `+v.resource_type`: as an index term after the patient range it would make
 * SQLite sort each patient's rows instead of reading them in index order.
 */
function selection(tenant: string, type: ResourceType, spec: ChunkSpec, from: RowCursor | undefined): Clause & { order: string } {
  const upper = upperBound(tenant, spec);
  const since = spec.since === null ? "" : " AND v.last_updated > ?";
  const current =
    " AND v.deleted = 0 AND v.version_id = (SELECT MAX(w.version_id) FROM resource_versions w INDEXED BY resource_versions_version WHERE w.tenant_id = v.tenant_id AND w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?)";
  const tail = [...upper.binds, spec.transactionTime, ...(spec.since === null ? [] : [spec.since])];
  if (type === "Patient") {
    return {
      sql: `resource_versions v INDEXED BY resource_versions_version WHERE v.tenant_id = ? AND v.resource_type = ? AND v.id > ? AND v.id <= ${upper.sql}${current}${since}`,
      binds: [tenant, type, from ? from.id : spec.after, ...tail],
      order: "v.id",
    };
  }
  const start = from ? "(v.patient_id, v.resource_type, v.id) > (?, ?, ?)" : "v.patient_id > ?";
  return {
    sql: `resource_versions v INDEXED BY resource_versions_patient WHERE v.tenant_id = ? AND +v.resource_type = ? AND ${start} AND v.patient_id <= ${upper.sql}${current}${since}`,
    binds: [tenant, type, ...(from ? [from.patient, type, from.id] : [spec.after]), ...tail],
    order: "v.patient_id, v.resource_type, v.id",
  };
}

export async function readChunk(db: D1Database, ring: Keyring, actor: AuditActor, spec: ChunkSpec, now: Date): Promise<ChunkRead> {
  // Only the asking client's tenant's resources: the same scoping as every other read (store/scope.ts).
  const tenant = actor.tenantId;
  const upper = upperBound(tenant, spec);
  const covered = upperBound(tenant, spec, "COUNT(*)");
  const statements: D1PreparedStatement[] = [db.prepare(`SELECT ${upper.sql} AS upper, ${covered.sql} AS covered`).bind(...upper.binds, ...covered.binds)];
  // The types still to read in this chunk, each from where it stands.
  const pending = spec.types.flatMap((type) => {
    const at = spec.progress?.[type];
    return at === "done" ? [] : [{ type, clause: selection(tenant, type, spec, at) }];
  });
  // One row more than a read takes: whether the type goes on after it.
  for (const { clause } of pending) {
    statements.push(db.prepare(`SELECT ${COLUMNS} FROM ${clause.sql} ORDER BY ${clause.order} LIMIT ?`).bind(...clause.binds, spec.rows + 1));
  }
  // A UNION (not an OR) so each part keeps its index; DISTINCT names a patient once (a patient has many
  // Observations, and a read may take only one type). Each part is the rows this read exports (its LIMIT, without
  // the extra row), so the record names exactly their patients.
  const any = pending.map(({ clause }) => `SELECT pid FROM (SELECT v.patient_id AS pid FROM ${clause.sql} ORDER BY ${clause.order} LIMIT ?)`).join(" UNION ");
  const patientIds = sqlValue(
    any === "" ? "SELECT ''" : `SELECT COALESCE(group_concat(pid, ','), '') FROM (SELECT DISTINCT pid FROM (${any}) ORDER BY pid)`,
    ...pending.flatMap(({ clause }) => [...clause.binds, spec.rows]),
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
  const progress: ChunkProgress = { ...spec.progress };
  let more = false;
  for (const [i, { type }] of pending.entries()) {
    const rows = ((data[i]?.results ?? []) as VersionRow[]).slice(0, spec.rows + 1);
    const goesOn = rows.length > spec.rows;
    if (goesOn) rows.length = spec.rows;
    const out: string[] = [];
    for (const row of rows) {
      out.push(JSON.stringify(await presentVersion(ring, row)));
      patients.add(row.patient_id);
    }
    lines.set(type, out);
    const last = rows.at(-1);
    progress[type] = goesOn && last ? { patient: last.patient_id, id: last.id } : "done";
    more ||= goesOn;
  }
  return { upper: page?.upper ?? null, covered: page?.covered ?? 0, lines, patients: [...patients], progress: more ? progress : null };
}

/** How many patients the export will cover (for progress): the tenant's that existed at the transaction time. */
export async function countPatients(db: D1Database, tenant: string, transactionTime: string): Promise<number> {
  const row = await db
    .prepare("SELECT COUNT(*) AS n FROM resource_versions WHERE tenant_id = ? AND resource_type = 'Patient' AND version_id = 1 AND last_updated <= ?")
    .bind(tenant, transactionTime)
    .first<{ n: number }>();
  return row?.n ?? 0;
}
