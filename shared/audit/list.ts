import { ident, type ChainValue } from "./hash";

/** One filter of an audit listing; values are always bound, names always checked. */
export type AuditFilter =
  | { kind: "eq"; column: string; value: ChainValue }
  | { kind: "anyEq"; columns: string[]; value: string }
  | { kind: "inList"; column: string; value: string }
  | { kind: "gte" | "lte"; column: string; value: string };

/** The filter of one tenant's listing (issue 18): a chain holds every tenant's records, a tenant reads its own. */
export function tenantFilter(tenantId: string): AuditFilter {
  return { kind: "eq", column: "tenant_id", value: tenantId };
}

export interface ListOptions {
  /** Records after this seq (the cursor). */
  after: number;
  limit: number;
  filters?: (AuditFilter | undefined)[];
}

export interface ListPage<Row> {
  rows: Row[];
  /** The cursor for the next page (the last seq on this one), or null when this page is the last. */
  next: number | null;
}

function condition(f: AuditFilter): { sql: string; binds: ChainValue[] } {
  switch (f.kind) {
    case "eq":
      return { sql: `${ident(f.column)} = ?`, binds: [f.value] };
    case "anyEq":
      return { sql: `(${f.columns.map((c) => `${ident(c)} = ?`).join(" OR ")})`, binds: f.columns.map(() => f.value) };
    case "inList":
      // A comma-separated list of server ids (no commas inside an id).
      return { sql: `instr(',' || ${ident(f.column)} || ',', ',' || ? || ',') > 0`, binds: [f.value] };
    case "gte":
      return { sql: `${ident(f.column)} >= ?`, binds: [f.value] };
    case "lte":
      return { sql: `${ident(f.column)} <= ?`, binds: [f.value] };
  }
}

/**
 * A page of one audit table in seq order (sealed and pending records alike:
 * a pending record is already durable and protected, only not yet linked).
 * A chain holds every tenant's records: a tenant's listing passes
 * `tenantFilter(principal.tenantId)` among its filters.
 */
export async function listAudit<Row extends { seq: number }>(db: Pick<D1Database, "prepare">, table: string, opts: ListOptions): Promise<ListPage<Row>> {
  const where = ["seq > ?"];
  const binds: ChainValue[] = [opts.after];
  for (const f of opts.filters ?? []) {
    if (!f) continue;
    const c = condition(f);
    where.push(c.sql);
    binds.push(...c.binds);
  }
  const { results } = await db
    .prepare(`SELECT * FROM ${ident(table)} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`)
    .bind(...binds, opts.limit + 1)
    .all<Row>();
  const rows = results.slice(0, opts.limit);
  const last = rows.at(-1);
  return { rows, next: results.length > opts.limit && last ? last.seq : null };
}
