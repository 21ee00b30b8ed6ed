import { auditInsert } from "../../../../shared/audit/append";
import { canonicalJson, SEAL_COLUMNS, type ChainValue } from "../../../../shared/audit/hash";
import { AUDIT_TABLE } from "../audit/trail";

/**
 * The tenant's audit history on its new shard. Sealed records are never deleted or rewritten (the
 * triggers of migrations/phi/0003 and 0006 forbid it): the source shard keeps them, its chain
 * intact. The destination gets a copy of each, appended pending with the same data columns and
 * `origin` = its first home (`<shard>:<seq>`), and its sealer links the copies into the
 * destination's chain like any record. A copy's key is its origin, or `<this shard>:<seq>` for a
 * record written here: a record already present under its key is not copied again, so a retried
 * move, or a move back to a shard the tenant lived on, adds each record at most once.
 */
type Row = Record<string, ChainValue>;

/** Source records per page: each page's key lookup binds at most 2 parameters per record (D1 allows 100). */
export const AUDIT_PAGE = 45;

const NOT_DATA = new Set<string>([...SEAL_COLUMNS, "origin"]);

/** A record's data columns, as the copy must carry them (and as verify compares them). */
function dataOf(row: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) if (!NOT_DATA.has(k)) out[k] = v;
  return out;
}

/** Where the record was first written: its origin, or this shard and its seq. */
export function keyOf(row: Row, shard: number): string {
  return typeof row.origin === "string" ? row.origin : `${shard}:${String(row.seq)}`;
}

/** The records of the tenant on `db` holding any of `keys`, by key (`shard` is that database's). */
async function present(db: D1Database, shard: number, tenant: string, keys: string[]): Promise<Map<string, Row>> {
  const native: number[] = [];
  const moved: string[] = [];
  for (const k of keys) {
    const [s, seq] = k.split(":");
    if (Number(s) === shard) native.push(Number(seq));
    else moved.push(k);
  }
  const out = new Map<string, Row>();
  const stmts: D1PreparedStatement[] = [];
  if (moved.length > 0) {
    stmts.push(
      db.prepare(`SELECT * FROM ${AUDIT_TABLE} WHERE tenant_id = ? AND origin IN (${moved.map(() => "?").join(", ")})`).bind(tenant, ...moved),
    );
  }
  if (native.length > 0) {
    stmts.push(
      db
        .prepare(`SELECT * FROM ${AUDIT_TABLE} WHERE tenant_id = ? AND origin IS NULL AND seq IN (${native.map(() => "?").join(", ")})`)
        .bind(tenant, ...native),
    );
  }
  if (stmts.length === 0) return out;
  for (const res of await db.batch<Row>(stmts)) for (const r of res.results) out.set(keyOf(r, shard), r);
  return out;
}

async function sourcePage(src: D1Database, tenant: string, after: number): Promise<Row[]> {
  const { results } = await src
    .prepare(`SELECT * FROM ${AUDIT_TABLE} WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
    .bind(tenant, after, AUDIT_PAGE)
    .all<Row>();
  return results;
}

export interface Shard {
  n: number;
  db: D1Database;
}

/** Copies one page of the tenant's records after source seq `after`. Null when none was left. */
export async function copyAuditPage(src: Shard, dst: Shard, tenant: string, after: number): Promise<{ copied: number; last: number } | null> {
  const rows = await sourcePage(src.db, tenant, after);
  const last = rows.at(-1);
  if (!last) return null;
  const there = await present(dst.db, dst.n, tenant, rows.map((r) => keyOf(r, src.n)));
  const inserts: D1PreparedStatement[] = [];
  for (const r of rows) {
    const key = keyOf(r, src.n);
    if (there.has(key)) continue;
    // A record going home (its key names the destination) is there already: `present` found it.
    inserts.push(auditInsert(dst.db, AUDIT_TABLE, { ...dataOf(r), origin: key }));
  }
  if (inserts.length > 0) await dst.db.batch(inserts);
  return { copied: inserts.length, last: Number(last.seq) };
}

/**
 * Checks that every audit record of the tenant on the source is on the destination with the same
 * data (every column the chain hashes). Resolves to the source's count, how many arrived intact,
 * and the first key that did not.
 */
export async function verifyAuditCopy(src: Shard, dst: Shard, tenant: string): Promise<{ source: number; arrived: number; missing: string | null }> {
  let after = 0;
  let source = 0;
  let arrived = 0;
  let missing: string | null = null;
  for (;;) {
    const rows = await sourcePage(src.db, tenant, after);
    const last = rows.at(-1);
    if (!last) break;
    const there = await present(dst.db, dst.n, tenant, rows.map((r) => keyOf(r, src.n)));
    for (const r of rows) {
      source++;
      const key = keyOf(r, src.n);
      const copy = there.get(key);
      if (copy && canonicalJson(dataOf(copy)) === canonicalJson(dataOf(r))) arrived++;
      else missing ??= key;
    }
    after = Number(last.seq);
  }
  return { source, arrived, missing };
}
