import type { IndexEntry } from "../fhir/index-tokens";
import type { ResourceType } from "../fhir/search-params";
import type { Scope } from "./scope";
import type { Sql } from "./search-query";

/** One row of resource_versions (insert-only), as the store reads it (its tenant is the scope's). */
export interface VersionRow {
  resource_type: ResourceType;
  id: string;
  version_id: number;
  last_updated: string;
  deleted: number;
  sealed: string | null;
  patient_id: string;
}

const COLUMNS = "resource_type, id, version_id, last_updated, deleted, sealed, patient_id";

/** The select of a resource's current version (to run alone, or in a batch with its audit record). */
export function headStatement(s: Scope, type: ResourceType, id: string): D1PreparedStatement {
  return s.db
    .prepare(`SELECT ${COLUMNS} FROM resource_versions WHERE tenant_id = ? AND resource_type = ? AND id = ? ORDER BY version_id DESC LIMIT 1`)
    .bind(s.tenant, type, id);
}

export function versionStatement(s: Scope, type: ResourceType, id: string, versionId: number): D1PreparedStatement {
  return s.db
    .prepare(`SELECT ${COLUMNS} FROM resource_versions WHERE tenant_id = ? AND resource_type = ? AND id = ? AND version_id = ?`)
    .bind(s.tenant, type, id, versionId);
}

export function readHead(s: Scope, type: ResourceType, id: string): Promise<VersionRow | null> {
  return headStatement(s, type, id).first<VersionRow>();
}

export function readVersion(s: Scope, type: ResourceType, id: string, versionId: number): Promise<VersionRow | null> {
  return versionStatement(s, type, id, versionId).first<VersionRow>();
}

/** Versions newest first (FHIR _history order), at most `limit`, older than `before` when given. */
export async function readHistory(s: Scope, type: ResourceType, id: string, limit: number, before?: number): Promise<VersionRow[]> {
  const { results } = await s.db
    .prepare(
      `SELECT ${COLUMNS} FROM resource_versions WHERE tenant_id = ? AND resource_type = ? AND id = ? AND version_id < ? ORDER BY version_id DESC LIMIT ?`,
    )
    .bind(s.tenant, type, id, before ?? Number.MAX_SAFE_INTEGER, limit)
    .all<VersionRow>();
  return results;
}

/**
 * The statements that write a version: the insert (its unique index makes a
 * concurrent writer of the same version fail, so versions never fork) and the
 * replacement of the resource's index rows, all stamped with the scope's tenant.
 */
export function writeVersionStatements(s: Scope, row: VersionRow, index: IndexEntry[], guard?: Sql): D1PreparedStatement[] {
  const values = [s.tenant, row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, row.sealed, row.patient_id];
  if (guard) {
    // A guarded version (a conditional create): written only while `guard` holds inside this batch's transaction,
    // and its index rows only when it was (`versionWritten`); the batch's first result tells (meta.changes).
    const written = versionWritten(s, row);
    const stmts = [
      s.db.prepare(`INSERT INTO resource_versions (tenant_id, ${COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE ${guard.sql}`).bind(...values, ...guard.binds),
    ];
    for (const e of index) {
      stmts.push(
        s.db
          .prepare(`INSERT INTO search_index (tenant_id, resource_type, resource_id, param, token) SELECT ?, ?, ?, ?, ? WHERE ${written.sql}`)
          .bind(s.tenant, row.resource_type, row.id, e.param, e.token, ...written.binds),
      );
    }
    return stmts;
  }
  const stmts = [
    s.db.prepare(`INSERT INTO resource_versions (tenant_id, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).bind(...values),
    s.db.prepare("DELETE FROM search_index WHERE tenant_id = ? AND resource_type = ? AND resource_id = ?").bind(s.tenant, row.resource_type, row.id),
  ];
  for (const e of index) {
    stmts.push(
      s.db
        .prepare("INSERT INTO search_index (tenant_id, resource_type, resource_id, param, token) VALUES (?, ?, ?, ?, ?)")
        .bind(s.tenant, row.resource_type, row.id, e.param, e.token),
    );
  }
  return stmts;
}

/** `EXISTS` this exact version of `row` (SQL condition, for statements of the same batch after its guarded insert). */
export function versionWritten(s: Scope, row: Pick<VersionRow, "resource_type" | "id" | "version_id">): Sql {
  return {
    sql: "EXISTS (SELECT 1 FROM resource_versions WHERE tenant_id = ? AND resource_type = ? AND id = ? AND version_id = ?)",
    binds: [s.tenant, row.resource_type, row.id, row.version_id],
  };
}
