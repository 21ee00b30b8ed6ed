import { ident, type ChainValue } from "./hash";

/** One filter of an audit listing; values are always bound, names always checked. */
export type AuditFilter =
  | { kind: "eq"; column: string; value: ChainValue }
  | { kind: "anyEq"; columns: string[]; value: string }
  | {
      kind: "inList";
      column: string;
      value: string;
      /**
       * The chain's link table (tenant_id, <value>, seq), filled as records are sealed: sealed records are found
       * through it and only the pending tail is scanned, instead of the whole trail.
       */
      links?: { table: string; tenant: string };
    }
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

function condition(f: AuditFilter, table: string, after: number): { sql: string; binds: ChainValue[] } {
  switch (f.kind) {
    case "eq":
      return { sql: `${ident(f.column)} = ?`, binds: [f.value] };
    case "anyEq":
      return { sql: `(${f.columns.map((c) => `${ident(c)} = ?`).join(" OR ")})`, binds: f.columns.map(() => f.value) };
    case "inList": {
      // A comma-separated list of server ids (no commas inside an id).
      const listed = `instr(',' || ${ident(f.column)} || ',', ',' || ? || ',') > 0`;
      if (!f.links) return { sql: listed, binds: [f.value] };
      // Sealed records through the links, pending ones (the sealer's backlog, seconds of records) by scanning the
      // pending index; one statement, one snapshot: a record is either sealed with its links or pending, never both.
      return {
        sql:
          `seq IN (SELECT seq FROM ${ident(f.links.table)} WHERE tenant_id = ? AND patient_id = ? AND seq > ? ` +
          `UNION ALL SELECT seq FROM ${ident(table)} INDEXED BY ${ident(`${table}_pending`)} WHERE hash IS NULL AND seq > ? AND ${listed})`,
        binds: [f.links.tenant, f.value, after, after, f.value],
      };
    }
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
  const q = listStatement(table, opts);
  const { results } = await db
    .prepare(q.sql)
    .bind(...q.binds)
    .all<Row>();
  const rows = results.slice(0, opts.limit);
  const last = rows.at(-1);
  return { rows, next: results.length > opts.limit && last ? last.seq : null };
}

/** The listing's statement: one page and one more row (exported for the query-plan tests). */
export function listStatement(table: string, opts: ListOptions): { sql: string; binds: ChainValue[] } {
  const where = ["seq > ?"];
  const binds: ChainValue[] = [opts.after];
  for (const f of opts.filters ?? []) {
    if (!f) continue;
    const c = condition(f, table, opts.after);
    where.push(c.sql);
    binds.push(...c.binds);
  }
  return { sql: `SELECT * FROM ${ident(table)} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`, binds: [...binds, opts.limit + 1] };
}
