import type { IndexEntry, TokenCondition } from "../fhir/index-tokens";
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

const RANGE_OPS = { ge: ">=", gt: ">", le: "<=", lt: "<" } as const;

/**
 * Ids of live resources matching every condition, in id order after `after`.
 * Exact matches compare blind-index tokens: nothing is decrypted to search.
 */
export async function searchIds(
  db: D1Database,
  type: ResourceType,
  conds: TokenCondition[],
  after: string,
  limit: number,
): Promise<string[]> {
  let sql = "SELECT resource_id FROM search_index WHERE resource_type = ? AND param = '_id' AND resource_id > ?";
  const binds: (string | number)[] = [type, after];
  for (const c of conds) {
    const test = c.kind === "exact" ? "token = ?" : `token ${RANGE_OPS[c.op]} ?`;
    sql += ` AND resource_id IN (SELECT resource_id FROM search_index WHERE resource_type = ? AND param = ? AND ${test})`;
    binds.push(type, c.param, c.kind === "exact" ? c.token : c.instant);
  }
  sql += " ORDER BY resource_id LIMIT ?";
  binds.push(limit);
  const { results } = await db
    .prepare(sql)
    .bind(...binds)
    .all<{ resource_id: string }>();
  return results.map((r) => r.resource_id);
}

/**
 * D1 binds at most 100 parameters per statement: ids are read in chunks below that, so a
 * full page (PHI_PAGE_MAX, 100 by default) plus the type parameter still fits.
 */
const IDS_PER_STATEMENT = 90;

/** Current versions of the given ids (same order). */
export async function readHeads(db: D1Database, type: ResourceType, ids: string[]): Promise<VersionRow[]> {
  if (ids.length === 0) return [];
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) chunks.push(ids.slice(i, i + IDS_PER_STATEMENT));
  const results = (
    await Promise.all(
      chunks.map(async (chunk) => {
        const { results: rows } = await db
          .prepare(
            `SELECT ${COLUMNS} FROM resource_versions v WHERE resource_type = ? AND id IN (${chunk.map(() => "?").join(",")}) ` +
              "AND version_id = (SELECT MAX(version_id) FROM resource_versions w WHERE w.resource_type = v.resource_type AND w.id = v.id)",
          )
          .bind(type, ...chunk)
          .all<VersionRow>();
        return rows;
      }),
    )
  ).flat();
  const byId = new Map(results.map((r) => [r.id, r]));
  return ids.flatMap((id) => {
    const r = byId.get(id);
    return r ? [r] : [];
  });
}
