import type { IndexEntry } from "../fhir/index-tokens";
import type { ResourceType } from "../fhir/search-params";

/** One row of resource_versions (insert-only). */
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
export function headStatement(db: D1Database, type: ResourceType, id: string): D1PreparedStatement {
  return db
    .prepare(`SELECT ${COLUMNS} FROM resource_versions WHERE resource_type = ? AND id = ? ORDER BY version_id DESC LIMIT 1`)
    .bind(type, id);
}

export function versionStatement(db: D1Database, type: ResourceType, id: string, versionId: number): D1PreparedStatement {
  return db.prepare(`SELECT ${COLUMNS} FROM resource_versions WHERE resource_type = ? AND id = ? AND version_id = ?`).bind(type, id, versionId);
}

export function readHead(db: D1Database, type: ResourceType, id: string): Promise<VersionRow | null> {
  return headStatement(db, type, id).first<VersionRow>();
}

export function readVersion(db: D1Database, type: ResourceType, id: string, versionId: number): Promise<VersionRow | null> {
  return versionStatement(db, type, id, versionId).first<VersionRow>();
}

/** Versions newest first (FHIR _history order), at most `limit`, older than `before` when given. */
export async function readHistory(db: D1Database, type: ResourceType, id: string, limit: number, before?: number): Promise<VersionRow[]> {
  const { results } = await db
    .prepare(
      `SELECT ${COLUMNS} FROM resource_versions WHERE resource_type = ? AND id = ? AND version_id < ? ORDER BY version_id DESC LIMIT ?`,
    )
    .bind(type, id, before ?? Number.MAX_SAFE_INTEGER, limit)
    .all<VersionRow>();
  return results;
}

/**
 * The statements that write a version: the insert (its primary key makes a
 * concurrent writer of the same version fail, so versions never fork) and the
 * replacement of the resource's index rows.
 */
export function writeVersionStatements(db: D1Database, row: VersionRow, index: IndexEntry[]): D1PreparedStatement[] {
  const stmts = [
    db
      .prepare(`INSERT INTO resource_versions (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
      .bind(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, row.sealed, row.patient_id),
    db.prepare("DELETE FROM search_index WHERE resource_type = ? AND resource_id = ?").bind(row.resource_type, row.id),
  ];
  for (const e of index) {
    stmts.push(
      db
        .prepare("INSERT INTO search_index (resource_type, resource_id, param, token) VALUES (?, ?, ?, ?)")
        .bind(row.resource_type, row.id, e.param, e.token),
    );
  }
  return stmts;
}
