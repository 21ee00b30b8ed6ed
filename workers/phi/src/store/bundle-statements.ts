import type { IndexEntry } from "../fhir/index-tokens";
import type { VersionRow } from "./resources";
import type { Scope } from "./scope";
import type { Sql } from "./search-query";

/**
 * The statements of one version for a Bundle's batch: the same rows as
 * `writeVersionStatements`, with the index rows inserted 25 to a statement. D1 caps
 * bound parameters at 100 per statement (5 per index row: 100 for 20 rows), and a 100-entry
 * transaction then stays near 400 statements in its one batch instead of ~1,000.
 */
const INDEX_ROWS_PER_STATEMENT = 20;

export function compactVersionStatements(s: Scope, row: VersionRow, index: IndexEntry[], guard?: Sql): D1PreparedStatement[] {
  const { db, tenant } = s;
  const version = guard
    ? // A conditional create's version: written only while `guard` holds inside the Bundle's batch; otherwise its
      // `last_updated` is NULL, the NOT NULL constraint fails and the batch writes nothing (`isConditionalConflict`).
      db
        .prepare(
          `INSERT INTO resource_versions (tenant_id, resource_type, id, version_id, last_updated, deleted, sealed, patient_id) SELECT ?, ?, ?, ?, CASE WHEN ${guard.sql} THEN ? END, ?, ?, ?`,
        )
        .bind(tenant, row.resource_type, row.id, row.version_id, ...guard.binds, row.last_updated, row.deleted, row.sealed, row.patient_id)
    : db
        .prepare(
          "INSERT INTO resource_versions (tenant_id, resource_type, id, version_id, last_updated, deleted, sealed, patient_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tenant, row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, row.sealed, row.patient_id);
  const stmts = [
    version,
    db.prepare("DELETE FROM search_index WHERE tenant_id = ? AND resource_type = ? AND resource_id = ?").bind(tenant, row.resource_type, row.id),
  ];
  for (let i = 0; i < index.length; i += INDEX_ROWS_PER_STATEMENT) {
    const chunk = index.slice(i, i + INDEX_ROWS_PER_STATEMENT);
    stmts.push(
      db
        .prepare(`INSERT INTO search_index (tenant_id, resource_type, resource_id, param, token) VALUES ${chunk.map(() => "(?, ?, ?, ?, ?)").join(", ")}`)
        .bind(...chunk.flatMap((e) => [tenant, row.resource_type, row.id, e.param, e.token])),
    );
  }
  return stmts;
}

/** A Bundle batch refused by a conditional create's guard: a matching Patient was created meanwhile. */
export function isConditionalConflict(err: unknown): boolean {
  return /NOT NULL constraint failed: resource_versions\.last_updated/.test(err instanceof Error ? err.message : String(err));
}
