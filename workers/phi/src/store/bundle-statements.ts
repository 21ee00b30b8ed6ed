import type { IndexEntry } from "../fhir/index-tokens";
import type { VersionRow } from "./resources";

/**
 * The statements of one version for a Bundle's batch: the same rows as
 * `writeVersionStatements`, with the index rows inserted 25 to a statement. D1 caps
 * bound parameters at 100 per statement (4 per index row), and a 100-entry
 * transaction then stays near 400 statements in its one batch instead of ~1,000.
 */
const INDEX_ROWS_PER_STATEMENT = 25;

export function compactVersionStatements(db: D1Database, row: VersionRow, index: IndexEntry[]): D1PreparedStatement[] {
  const stmts = [
    db
      .prepare("INSERT INTO resource_versions (resource_type, id, version_id, last_updated, deleted, sealed, patient_id) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .bind(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, row.sealed, row.patient_id),
    db.prepare("DELETE FROM search_index WHERE resource_type = ? AND resource_id = ?").bind(row.resource_type, row.id),
  ];
  for (let i = 0; i < index.length; i += INDEX_ROWS_PER_STATEMENT) {
    const chunk = index.slice(i, i + INDEX_ROWS_PER_STATEMENT);
    stmts.push(
      db
        .prepare(`INSERT INTO search_index (resource_type, resource_id, param, token) VALUES ${chunk.map(() => "(?, ?, ?, ?)").join(", ")}`)
        .bind(...chunk.flatMap((e) => [row.resource_type, row.id, e.param, e.token])),
    );
  }
  return stmts;
}
