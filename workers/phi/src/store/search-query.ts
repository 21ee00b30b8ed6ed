import type { TokenCondition } from "../fhir/index-tokens";
import type { ResourceType, SortOrder } from "../fhir/search-params";
import type { VersionRow } from "./resources";
import type { Scope, SqlDb } from "./scope";

/**
 * One page of a FHIR search as one D1 batch (one round trip): the page with the current
 * version of each match, then the total, the included Patients and the revincluded
 * Observations when asked. D1 runs a batch as one transaction, so all parts agree.
 *
 * Paging is keyset paging over a snapshot: matches are ordered by the version each
 * resource had at `asOf` (the instant the first page was served; resource_versions is
 * insert-only, so that version still exists), with the id as tie-breaker. An update
 * during paging gives a resource a newer version but does not move it in the order, so
 * no resource is served twice or skipped; one deleted meanwhile is left out of its page.
 */
export interface SearchPlan {
  /** Only this tenant's resources match, are included or revincluded. */
  tenant: string;
  type: ResourceType;
  conds: TokenCondition[];
  sort: SortOrder;
  /** The last (sort key, id) served; null on the first page. */
  after: { key: string; id: string } | null;
  /** Rows to read for the page (count + 1 tells whether another page follows). */
  limit: number;
  asOf: string;
  total: boolean;
  include: boolean;
  revinclude: boolean;
  /** At most this many revincluded resources (+1 to tell that some were left out). */
  revincludeMax: number;
}

export interface PageRow extends VersionRow {
  sort_key: string;
}

export interface SearchResult {
  page: PageRow[];
  total: number | undefined;
  included: VersionRow[];
  revincluded: VersionRow[];
}

const COLUMNS = "h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.sealed, h.patient_id";
const OPS = { ge: ">=", gt: ">", le: "<=", lt: "<" } as const;
/** The current version of `h` (the head). */
const HEAD =
  "h.version_id = (SELECT MAX(x.version_id) FROM resource_versions x INDEXED BY resource_versions_version WHERE x.tenant_id = h.tenant_id AND x.resource_type = h.resource_type AND x.id = h.id)";

export interface Sql {
  sql: string;
  binds: (string | number)[];
}

/**
 * Which index drives the matches: the ids (the unique version index) when a blind-index condition picks them or
 * the order is `_id`; the `_lastUpdated` index otherwise (all of a type, in that order, a keyset range of it).
 * Named, as every index of these statements: without statistics SQLite took the `_lastUpdated` index for the
 * snapshot's `last_updated <=`, also in the per-row version subquery, which then scanned every version of the type
 * for every row (the first page of 10,000 Patients took 6 s, 78 ms at 1,000: quadratic).
 */
function drivingIndex(plan: Pick<SearchPlan, "conds"> & Partial<Pick<SearchPlan, "sort">>): string {
  const byIds = plan.sort === undefined || plan.sort === "_id" || plan.conds.some((c) => !(c.kind === "range" && c.param === "_lastUpdated"));
  return byIds ? "resource_versions_version" : "resource_versions_updated";
}

/**
 * Matches as of the snapshot, before keyset and order: `v` is each one's version at `asOf`. `belowKeyset`: a
 * descending keyset follows, whose (last_updated, id) < cursor already keeps `v` at or before `asOf` (the cursor
 * came from a row of the snapshot); SQLite seeks the index by one upper bound only, and with `v.last_updated <=
 * asOf` beside it took that one, stepping past every row newer than the cursor on each later page.
 */
function matches(plan: Pick<SearchPlan, "tenant" | "type" | "conds" | "asOf"> & Partial<Pick<SearchPlan, "sort">>, belowKeyset = false): Sql {
  const snapshot = belowKeyset ? "" : " AND v.last_updated <= ?";
  let sql =
    `FROM resource_versions v INDEXED BY ${drivingIndex(plan)} WHERE v.tenant_id = ? AND v.resource_type = ?${snapshot} AND v.deleted = 0 AND v.version_id = ` +
    "(SELECT MAX(w.version_id) FROM resource_versions w INDEXED BY resource_versions_version WHERE w.tenant_id = v.tenant_id AND w.resource_type = v.resource_type AND w.id = v.id AND w.last_updated <= ?)";
  const binds: (string | number)[] = belowKeyset ? [plan.tenant, plan.type, plan.asOf] : [plan.tenant, plan.type, plan.asOf, plan.asOf];
  for (const c of plan.conds) {
    if (c.kind === "range" && c.param === "_lastUpdated") {
      sql += ` AND v.last_updated ${OPS[c.op]} ?`;
      binds.push(c.instant);
      continue;
    }
    // Exact matches compare blind-index tokens: nothing is decrypted to search.
    const test = c.kind === "exact" ? "token = ?" : `token ${OPS[c.op]} ?`;
    sql += ` AND v.id IN (SELECT resource_id FROM search_index WHERE tenant_id = ? AND resource_type = ? AND param = ? AND ${test})`;
    binds.push(plan.tenant, plan.type, c.param, c.kind === "exact" ? c.token : c.instant);
  }
  return { sql, binds };
}

/** Far enough ahead that every stored version is "as of" it: the current heads. */
const NOW_AND_EVER = "9999-12-31T23:59:59.999Z";

/**
 * `NOT EXISTS` a live resource of `type` matching `conds`, as a SQL condition to guard a write with: evaluated
 * inside the write's own transaction, so a conditional create that another request's committed create would now
 * match inserts nothing (FHIR http.html#ccreate under concurrency: one resource, not two).
 */
export function noLiveMatch(tenant: string, type: ResourceType, conds: TokenCondition[]): Sql {
  const m = matches({ tenant, type, conds, asOf: NOW_AND_EVER });
  return { sql: `NOT EXISTS (SELECT 1 ${m.sql})`, binds: m.binds };
}

function orderBy(sort: SortOrder, key: string, id: string): string {
  if (sort === "_id") return id;
  const dir = sort === "-_lastUpdated" ? "DESC" : "ASC";
  return `${key} ${dir}, ${id} ${dir}`;
}

/** The page's snapshot rows as a CTE named `page` (id, sort key, patient). */
function pageCte(plan: SearchPlan): Sql {
  const m = matches(plan, plan.after !== null && plan.sort === "-_lastUpdated");
  let sql = `WITH page AS (SELECT v.id AS id, v.last_updated AS sort_key, v.patient_id AS patient_id ${m.sql}`;
  const binds = [...m.binds];
  if (plan.after) {
    if (plan.sort === "_id") {
      sql += " AND v.id > ?";
      binds.push(plan.after.id);
    } else {
      // A row-value comparison: the (last_updated, id) index serves it as one range.
      const cmp = plan.sort === "-_lastUpdated" ? "<" : ">";
      sql += ` AND (v.last_updated, v.id) ${cmp} (?, ?)`;
      binds.push(plan.after.key, plan.after.id);
    }
  }
  sql += ` ORDER BY ${orderBy(plan.sort, "v.last_updated", "v.id")} LIMIT ?)`;
  binds.push(plan.limit);
  return { sql, binds };
}

export async function searchPage(scope: Scope, plan: Omit<SearchPlan, "tenant">): Promise<SearchResult> {
  return searchPlan(scope.db, { ...plan, tenant: scope.tenant });
}

/** The page's statement: its snapshot rows, each with its current version (exported for the query-plan tests). */
export function pageQuery(plan: SearchPlan, cte: Sql = pageCte(plan)): Sql {
  return {
    // CROSS JOIN keeps the page the outer loop (SQLite does not reorder it): each of its rows finds its head by id.
    sql:
      `${cte.sql} SELECT page.sort_key AS sort_key, ${COLUMNS} FROM page CROSS JOIN resource_versions h ` +
      `ON h.tenant_id = ? AND h.resource_type = ? AND h.id = page.id AND ${HEAD} ORDER BY ${orderBy(plan.sort, "page.sort_key", "page.id")}`,
    binds: [...cte.binds, plan.tenant, plan.type],
  };
}

async function searchPlan(db: SqlDb, plan: SearchPlan): Promise<SearchResult> {
  const cte = pageCte(plan);
  const first = pageQuery(plan, cte);
  const stmts: D1PreparedStatement[] = [db.prepare(first.sql).bind(...first.binds)];
  const m = matches(plan);
  if (plan.total) stmts.push(db.prepare(`SELECT COUNT(*) AS n ${m.sql}`).bind(...m.binds));
  if (plan.include) {
    stmts.push(
      db
        .prepare(
          `${cte.sql} SELECT ${COLUMNS} FROM resource_versions h WHERE h.tenant_id = ? AND h.resource_type = 'Patient' AND h.id IN (SELECT patient_id FROM page) AND ${HEAD}`,
        )
        .bind(...cte.binds, plan.tenant),
    );
  }
  if (plan.revinclude) {
    stmts.push(
      db
        .prepare(
          `${cte.sql} SELECT ${COLUMNS} FROM resource_versions h WHERE h.tenant_id = ? AND h.resource_type = 'Observation' AND h.patient_id IN (SELECT id FROM page) ` +
            `AND ${HEAD} AND h.deleted = 0 ORDER BY h.patient_id, h.id LIMIT ?`,
        )
        .bind(...cte.binds, plan.tenant, plan.revincludeMax + 1),
    );
  }
  const results = await db.batch(stmts);
  let i = 1;
  const page = (results[0]?.results ?? []) as PageRow[];
  const total = plan.total ? ((results[i++]?.results[0] as { n: number } | undefined)?.n ?? 0) : undefined;
  const included = plan.include ? ((results[i++]?.results ?? []) as VersionRow[]) : [];
  const revincluded = plan.revinclude ? ((results[i]?.results ?? []) as VersionRow[]) : [];
  return { page, total, included, revincluded };
}
