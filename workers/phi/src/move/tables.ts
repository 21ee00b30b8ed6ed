import { sha256Hex } from "../../../../shared/crypto";
import { canonicalJson, ident, type ChainValue } from "../../../../shared/audit/hash";
import { AUDIT_PATIENTS_TABLE, AUDIT_TABLE } from "../audit/trail";

/**
 * The tenant's data tables of a shard, found in the database itself: every table with a
 * `tenant_id` column except the audit trail (moved by ./audit-copy.ts, never deleted) and its links by patient
 * (derived from it: the destination's sealer links the copies there). A table a
 * later migration adds with `tenant_id` (per-tenant data keys, say) moves with no change here.
 */
export interface DataTable {
  name: string;
  columns: string[];
}

type Row = Record<string, ChainValue>;

/** Rows one D1 batch copies or deletes: small batches keep each transaction short. */
export const ROWS_PER_BATCH = 100;
/** Batches one step call runs at most, so one internal request stays bounded whatever the tenant's size. */
export const BATCHES_PER_CALL = 10;

export async function dataTables(db: D1Database): Promise<DataTable[]> {
  const { results } = await db
    .prepare(
      `SELECT m.name AS tbl, p.name AS col FROM sqlite_master m, pragma_table_info(m.name) p
       WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND m.name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
       ORDER BY m.name, p.cid`,
    )
    .all<{ tbl: string; col: string }>();
  const byTable = new Map<string, string[]>();
  for (const r of results) byTable.set(r.tbl, [...(byTable.get(r.tbl) ?? []), r.col]);
  return [...byTable]
    .filter(([name, cols]) => name !== AUDIT_TABLE && name !== AUDIT_PATIENTS_TABLE && cols.includes("tenant_id"))
    .map(([name, columns]) => ({ name: ident(name), columns: columns.map(ident) }));
}

export async function countRows(db: D1Database, table: string, tenant: string): Promise<number> {
  return (await db.prepare(`SELECT COUNT(*) AS n FROM ${ident(table)} WHERE tenant_id = ?`).bind(tenant).first<number>("n")) ?? 0;
}

/**
 * Copies up to one batch of the tenant's rows of `t` after `after` (a source rowid) into `dst`, one
 * D1 batch (one transaction). Returns how many and the last rowid, or null when none was left.
 */
export async function copyPage(src: D1Database, dst: D1Database, t: DataTable, tenant: string, after: number): Promise<{ copied: number; last: number } | null> {
  const { results } = await src
    .prepare(`SELECT rowid AS move_rowid, * FROM ${t.name} WHERE tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT ?`)
    .bind(tenant, after, ROWS_PER_BATCH)
    .all<Row>();
  const last = results.at(-1);
  if (!last) return null;
  const insert = `INSERT INTO ${t.name} (${t.columns.join(", ")}) VALUES (${t.columns.map(() => "?").join(", ")})`;
  await dst.batch(results.map((r) => dst.prepare(insert).bind(...t.columns.map((c) => r[c] ?? null))));
  return { copied: results.length, last: Number(last.move_rowid) };
}

/** Deletes up to one batch of the tenant's rows of `table`; resolves to how many. */
export async function deletePage(db: D1Database, table: string, tenant: string): Promise<number> {
  const t = ident(table);
  const r = await db.prepare(`DELETE FROM ${t} WHERE rowid IN (SELECT rowid FROM ${t} WHERE tenant_id = ? LIMIT ?)`).bind(tenant, ROWS_PER_BATCH * 5).run();
  return r.meta.changes;
}

/**
 * The tenant's rows of `t` in one number: the sum of each row's SHA-256 (first 16 bytes, mod
 * 2^128) over every column. Order-free, so two databases compare without sorting; equal counts and
 * equal digests mean the same rows, values included (sealed bodies, search tokens, keys).
 */
export async function tableDigest(db: D1Database, t: DataTable, tenant: string): Promise<{ rows: number; digest: string }> {
  let sum = 0n;
  let rows = 0;
  let after = 0;
  for (;;) {
    const { results } = await db
      .prepare(`SELECT rowid AS move_rowid, * FROM ${t.name} WHERE tenant_id = ? AND rowid > ? ORDER BY rowid LIMIT 1000`)
      .bind(tenant, after)
      .all<Row>();
    for (const r of results) {
      const data: Row = {};
      for (const c of t.columns) data[c] = r[c] ?? null;
      sum = (sum + BigInt(`0x${(await sha256Hex(canonicalJson(data))).slice(0, 32)}`)) % 2n ** 128n;
    }
    rows += results.length;
    const last = results.at(-1);
    if (!last || results.length < 1000) break;
    after = Number(last.move_rowid);
  }
  return { rows, digest: sum.toString(16) };
}
