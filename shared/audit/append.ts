import { ApiError } from "../errors";
import { logger } from "../logger";
import { ident, type ChainValue } from "./hash";

/**
 * Appending an audit record: one INSERT that joins the batch of the data it
 * covers (HIPAA 164.312(b), SOX, 21 CFR 11.10(e)). The database assigns `seq`
 * (INTEGER PRIMARY KEY AUTOINCREMENT) and the seal columns stay NULL until the
 * chain's sealer links the record (./seal.ts). Nothing is read first and nothing
 * is retried: concurrent writers never contend for a chain head, and no request
 * waits on another. A batch is one transaction, so the data never commits
 * without its record, and a read's select and its record share one snapshot.
 */

/** A column value computed by SQL in the same statement (e.g. an outcome that depends on the data). */
export interface SqlValue {
  sql: string;
  binds: ChainValue[];
}

export type AuditValue = ChainValue | SqlValue;

function isSql(v: AuditValue): v is SqlValue {
  return typeof v === "object" && v !== null;
}

/** `CASE WHEN EXISTS(...) ...`-style values: a SQL expression with its parameters. */
export function sqlValue(sql: string, ...binds: ChainValue[]): SqlValue {
  return { sql, binds };
}

/**
 * The INSERT of one record (not yet sealed), to run inside the caller's batch. `from` is a row source the SQL
 * values may name (`FROM <from>`): one lookup whose columns decide several values, rather than a subquery per
 * value. It must give exactly one row whatever the data (a LEFT JOIN from a constant row), or no record is written.
 */
export function auditInsert(db: Pick<D1Database, "prepare">, table: string, columns: Record<string, AuditValue>, from?: SqlValue): D1PreparedStatement {
  const names = Object.keys(columns).map(ident);
  const exprs: string[] = [];
  const binds: ChainValue[] = [];
  for (const name of names) {
    const v = columns[name] ?? null;
    if (isSql(v)) {
      exprs.push(`(${v.sql})`);
      binds.push(...v.binds);
    } else {
      exprs.push("?");
      binds.push(v);
    }
  }
  const source = from ? ` FROM ${from.sql}` : "";
  if (from) binds.push(...from.binds);
  return db.prepare(`INSERT INTO ${ident(table)} (${names.join(", ")}) SELECT ${exprs.join(", ")}${source}`).bind(...binds);
}

/**
 * Runs `statements` and the audit `insert` as one D1 batch (one round trip, one
 * transaction) and returns the statements' results in order. When the batch
 * fails nothing was written, and no data leaves. With `statements`, the error is
 * rethrown as it is: the caller answers a constraint of its own (a duplicate, a
 * lost version race), and a broken store answers 503 through the one error
 * path, after the request's failure is recorded (or, if the trail itself is
 * broken, 503 `audit_unavailable` from that). The record alone failing is ApiError
 * 503 `audit_unavailable` (fail closed: no access without a record), except a
 * constraint (a guard trigger put on the table), rethrown for the one error path.
 */
export async function commitWithRecord(
  db: Pick<D1Database, "prepare" | "batch">,
  table: string,
  statements: D1PreparedStatement[],
  insert: D1PreparedStatement,
): Promise<D1Result[]> {
  try {
    const results = await db.batch([...statements, insert]);
    return results.slice(0, statements.length);
  } catch (err) {
    // A constraint (a guard trigger's RAISE: the store put read-only) is the store's answer, as before.
    if (statements.length > 0 || /constraint failed|SQLITE_CONSTRAINT/i.test(err instanceof Error ? err.message : "")) throw err;
    logger.error("audit_write_failed", { table, error_class: err instanceof Error ? err.name : typeof err });
    throw new ApiError(503, "audit_unavailable", "The audit trail could not be written; nothing was done.");
  }
}
