import { copyAuditPage, verifyAuditCopy, type Shard } from "./audit-copy";
import { BATCHES_PER_CALL, copyPage, countRows, dataTables, deletePage, ROWS_PER_BATCH, tableDigest, type DataTable } from "./tables";
import { AUDIT_TABLE } from "../audit/trail";

/**
 * The steps of a tenant move on phi's side (workers/phi/README.md "Moving a tenant"). Auth drives
 * them in order over the service binding while the tenant is frozen; each call does a bounded
 * amount of work and answers where to go on (`cursor`, null when the step is finished).
 */
export interface Cursor {
  /** Index into the step's table list (data tables by name, then the audit trail for a copy). */
  table: number;
  /** The last source rowid (data) or seq (audit) copied. */
  after: number;
}

export type Counts = Record<string, number>;

export interface StepResult {
  cursor: Cursor | null;
  counts: Counts;
}

function add(counts: Counts, table: string, n: number): void {
  counts[table] = (counts[table] ?? 0) + n;
}

/** What the tenant holds on `db`: rows per data table and audit records. */
export async function inventory(db: D1Database, tenant: string): Promise<Counts> {
  const counts: Counts = {};
  for (const t of await dataTables(db)) counts[t.name] = await countRows(db, t.name, tenant);
  counts[AUDIT_TABLE] = await countRows(db, AUDIT_TABLE, tenant);
  return counts;
}

/**
 * Deletes the tenant's data rows from `db` (never its audit records), a bounded number of batches
 * per call: the source's rows after a move, or the destination's after a failed or before a fresh one.
 */
export async function removeStep(db: D1Database, tenant: string, cursor: Cursor | null): Promise<StepResult> {
  const tables = await dataTables(db);
  const counts: Counts = {};
  let i = cursor?.table ?? 0;
  for (let batches = 0; batches < BATCHES_PER_CALL && i < tables.length; batches++) {
    const t = tables[i];
    if (!t) break;
    const n = await deletePage(db, t.name, tenant);
    add(counts, t.name, n);
    if (n < ROWS_PER_BATCH * 5) i++;
  }
  return { cursor: i < tables.length ? { table: i, after: 0 } : null, counts };
}

/** Copies the tenant's data rows, then its audit records, from `src` to `dst`, a bounded number of batches per call. */
export async function copyStep(src: Shard, dst: Shard, tenant: string, cursor: Cursor | null): Promise<StepResult> {
  const tables: (DataTable | null)[] = [...(await dataTables(src.db)), null];
  const counts: Counts = {};
  let { table: i, after } = cursor ?? { table: 0, after: 0 };
  for (let batches = 0; batches < BATCHES_PER_CALL && i < tables.length; batches++) {
    const t = tables[i];
    const page = t ? await copyPage(src.db, dst.db, t, tenant, after) : await copyAuditPage(src, dst, tenant, after);
    if (page) add(counts, t?.name ?? AUDIT_TABLE, page.copied);
    if (page) {
      after = page.last;
    } else {
      i++;
      after = 0;
    }
  }
  return { cursor: i < tables.length ? { table: i, after } : null, counts };
}

export interface Verification {
  ok: boolean;
  tables: Record<string, { source: number; destination: number; same: boolean }>;
  audit: { source: number; arrived: number; missing: string | null };
}

/**
 * Every data row arrived with every value (per table: same count, same digest over every column)
 * and every audit record arrived with its data. Read only.
 */
export async function verifyStep(src: Shard, dst: Shard, tenant: string): Promise<Verification> {
  const tables: Verification["tables"] = {};
  let ok = true;
  for (const t of await dataTables(src.db)) {
    const [a, b] = await Promise.all([tableDigest(src.db, t, tenant), tableDigest(dst.db, t, tenant)]);
    const same = a.rows === b.rows && a.digest === b.digest;
    tables[t.name] = { source: a.rows, destination: b.rows, same };
    ok &&= same;
  }
  const audit = await verifyAuditCopy(src, dst, tenant);
  return { ok: ok && audit.arrived === audit.source, tables, audit };
}
