import { integer, text } from "drizzle-orm/sqlite-core";
import { sha256Hex } from "./crypto";
import { ApiError } from "./errors";
import { logger } from "./logger";

/**
 * Append-only, hash-chained audit trail on D1, shared by phi, payments and
 * devices (HIPAA 164.312(b) audit controls, SOX, 21 CFR 11.10(e)).
 *
 * Each row: `seq` (1, 2, 3 ... no gaps), its data columns, `prev_hash` (the hash
 * of row seq-1, or GENESIS) and `hash` = SHA-256(prev_hash "\n" canonical JSON
 * of {seq, ...columns}). Writers append optimistically: read the last row (or
 * trust the head this isolate last saw, guarded in SQL), insert seq+1 in one
 * batch with the data statements it records; a concurrent
 * writer that took seq+1 first makes the batch fail on the primary key, so the
 * whole batch (data included) rolls back and is retried. The chain therefore
 * never forks or skips, and data never commits without its record.
 */
export const GENESIS_HASH = "0".repeat(64);

/** Drizzle columns every chained table starts with. */
export function chainColumns() {
  return {
    seq: integer("seq").primaryKey(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
  };
}

export type ChainValue = string | number | null;
export type ChainColumns = Record<string, ChainValue>;

const IDENT = /^[a-z_][a-z0-9_]*$/;

function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`unsafe SQL identifier: ${name}`);
  return name;
}

/** JSON with sorted keys, so the hash does not depend on property order. */
export function canonicalJson(row: ChainColumns): string {
  const keys = Object.keys(row).sort();
  return "{" + keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(row[k] ?? null)}`).join(",") + "}";
}

export function chainHash(prevHash: string, seq: number, columns: ChainColumns): Promise<string> {
  return sha256Hex(`${prevHash}\n${canonicalJson({ ...columns, seq })}`);
}

export interface AppendOptions {
  table: string;
  columns: ChainColumns;
  /** Statements committed in the same batch, before the audit row (all or nothing). */
  statements?: D1PreparedStatement[];
  maxAttempts?: number;
}

export interface AppendResult {
  seq: number;
  hash: string;
  /** Results of `statements`, in order. */
  results: D1Result[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Another writer took this sequence number first: retry on the new head. */
function isChainConflict(err: unknown, table: string): boolean {
  return /UNIQUE constraint failed/i.test(message(err)) && message(err).includes(`${table}.seq`);
}

/** A constraint of the caller's own statements failed: their outcome to decide, not an audit failure. */
function isStatementConstraint(err: unknown): boolean {
  return /constraint failed|SQLITE_CONSTRAINT/i.test(message(err));
}

/**
 * Appends to one chain from one isolate take turns: concurrent requests in the same
 * isolate would otherwise race each other for the same seq and retry quadratically
 * (32 concurrent device registrations exhausted their retries before this). Races
 * between isolates remain, and the retry below resolves them.
 */
const tails = new Map<string, Promise<unknown>>();
function inTurn<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (tails.get(key) ?? Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => undefined);
  tails.set(key, tail);
  // Forget an idle chain's turn so the map never grows with finished work.
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}

/**
 * Appends one record (and commits `statements` with it). Throws ApiError 503
 * `audit_unavailable` when the record cannot be written: the caller must then
 * answer without the data (no access without a record). When a constraint of
 * one of `statements` fails (a duplicate, a lost version race), the batch rolled
 * back and that error is rethrown as it is, for the caller to answer.
 */
export function appendChained(db: D1Database, opts: AppendOptions): Promise<AppendResult> {
  return inTurn(opts.table, () => appendOnce(db, opts));
}

/**
 * The last head this isolate wrote or read, per chain. An append that trusts it
 * skips the head read (one D1 round trip instead of two): its insert takes
 * `prev_hash` from a sub-select that matches the cached row by seq AND hash, so a
 * stale or foreign cache yields NULL, fails the NOT NULL column, rolls the whole
 * batch back, and the append starts again from a fresh read. A newer head written
 * by another isolate fails on `seq` as before.
 */
const heads = new Map<string, { seq: number; hash: string }>();

function isGuardMiss(err: unknown, table: string): boolean {
  return /NOT NULL constraint failed/i.test(message(err)) && message(err).includes(`${table}.prev_hash`);
}

async function appendOnce(db: D1Database, opts: AppendOptions): Promise<AppendResult> {
  const table = ident(opts.table);
  const names = Object.keys(opts.columns).map(ident);
  const maxAttempts = opts.maxAttempts ?? 50;
  const cols = `(seq, prev_hash, hash${names.map((n) => ", " + n).join("")})`;
  const rest = names.map(() => ", ?").join("");
  const insertSql = `INSERT INTO ${table} ${cols} VALUES (?, ?, ?${rest})`;
  const guardedSql = `INSERT INTO ${table} ${cols} VALUES (?, (SELECT hash FROM ${table} WHERE seq = ? AND hash = ?), ?${rest})`;
  const values = names.map((n) => opts.columns[n] ?? null);
  let lastError: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const cached = heads.get(table);
    try {
      const last =
        cached ??
        (await db.prepare(`SELECT seq, hash FROM ${table} ORDER BY seq DESC LIMIT 1`).first<{ seq: number; hash: string }>()) ??
        undefined;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS_HASH;
      const hash = await chainHash(prevHash, seq, opts.columns);
      const insert = cached
        ? db.prepare(guardedSql).bind(seq, cached.seq, cached.hash, hash, ...values)
        : db.prepare(insertSql).bind(seq, prevHash, hash, ...values);
      const results = await db.batch([...(opts.statements ?? []), insert]);
      heads.set(table, { seq, hash });
      return { seq, hash, results: results.slice(0, -1) };
    } catch (err) {
      lastError = err;
      heads.delete(table);
      // The cached head was stale or another database's: read the real one (no back-off needed).
      if (cached && isGuardMiss(err, table)) continue;
      if (!isChainConflict(err, table)) {
        if (isStatementConstraint(err)) throw err;
        break;
      }
      // Back off a little with jitter so many writers do not collide again in lockstep.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 * (attempt + 1))));
    }
  }
  logger.error("audit_write_failed", {
    table,
    error_class: lastError instanceof Error ? lastError.name : typeof lastError,
  });
  throw new ApiError(503, "audit_unavailable", "The audit trail could not be written; nothing was done.");
}

/** Most records one verification segment checks (the routes' default and maximum `limit`). */
export const VERIFY_LIMIT_MAX = 100_000;

/** Where a segment sits in the chain: present on every result, ok or not. */
export interface VerifySegment {
  /** Seq of the first record this segment examined; null when there was none after `after`. */
  from: number | null;
  /** Seq of the last record this segment verified intact; null when none was. */
  to: number | null;
  /** Pass as `after` for the next segment; null when this segment reached the head or found a break. */
  next_after: number | null;
  /** True only when this segment verified every record up to the current head. */
  complete: boolean;
}

export type VerifyResult = (
  | { ok: true; records: number; head: string }
  | { ok: false; records: number; broken_at: number; reason: "hash_mismatch" | "prev_hash_mismatch" | "gap" }
) &
  VerifySegment;

export interface VerifyOptions {
  /** Start after this seq (0 = genesis); its stored `hash` is the first link. */
  after?: number;
  /** Check at most this many records (default: all of them, to the head). */
  limit?: number;
  /** Rows read per D1 query. */
  pageSize?: number;
}

/**
 * Recomputes the chain, or one segment of it, in pages; reports the first broken
 * link. Linear in the number of records checked.
 *
 * A segment (`after`, `limit`) checks records after+1 ... after+limit: each one's
 * hash and its link to the one before, starting from the stored hash of record
 * `after` (GENESIS for 0). It proves those links, not record `after` itself, which
 * the previous segment checked; walking `next_after` from 0 until `complete`
 * proves the whole chain. `records` counts the records verified intact here, and
 * `head` is the hash of `to` (of `after` when the segment was empty).
 *
 * When record `after` does not exist: if later records exist, a record was removed
 * and the result is `{ok: false, broken_at: after, reason: "gap"}` (what a walk
 * from genesis reports there); if none does, `after` lies beyond the head and
 * ApiError 404 `audit_record_not_found` is thrown.
 */
export async function verifyChain(db: D1Database, tableName: string, options: VerifyOptions | number = {}): Promise<VerifyResult> {
  const table = ident(tableName);
  const { after = 0, limit = Infinity, pageSize = 1000 } = typeof options === "number" ? { pageSize: options } : options;
  if (!Number.isSafeInteger(after) || after < 0) throw new RangeError("after must be an integer >= 0");
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit >= 1))) throw new RangeError("limit must be an integer >= 1");
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError("pageSize must be an integer >= 1");

  let prevHash = GENESIS_HASH;
  if (after > 0) {
    const anchor = await db.prepare(`SELECT hash FROM ${table} WHERE seq = ?`).bind(after).first<{ hash: string }>();
    if (!anchor) {
      const later = await db.prepare(`SELECT seq FROM ${table} WHERE seq > ? ORDER BY seq LIMIT 1`).bind(after).first<{ seq: number }>();
      if (!later) {
        throw new ApiError(404, "audit_record_not_found", "No audit record has this seq: `after` must be 0 or the seq of an existing record.");
      }
      return { ok: false, records: 0, broken_at: after, reason: "gap", from: Number(later.seq), to: null, next_after: null, complete: false };
    }
    prevHash = String(anchor.hash);
  }

  let expected = after + 1;
  let count = 0;
  let from: number | null = null;
  let reachedEnd = false;
  const to = () => (count > 0 ? expected - 1 : null);
  const broken = (broken_at: number, reason: "hash_mismatch" | "prev_hash_mismatch" | "gap"): VerifyResult => ({
    ok: false,
    records: count,
    broken_at,
    reason,
    from,
    to: to(),
    next_after: null,
    complete: false,
  });
  while (count < limit) {
    const take = Math.min(pageSize, limit - count);
    const { results } = await db
      .prepare(`SELECT * FROM ${table} WHERE seq >= ? ORDER BY seq LIMIT ?`)
      .bind(expected, take)
      .all<Record<string, ChainValue>>();
    for (const row of results) {
      const { seq, prev_hash, hash, ...columns } = row;
      const n = Number(seq);
      from ??= n;
      if (n !== expected) return broken(expected, "gap");
      if (prev_hash !== prevHash) return broken(n, "prev_hash_mismatch");
      if ((await chainHash(prevHash, n, columns)) !== hash) return broken(n, "hash_mismatch");
      prevHash = String(hash);
      expected = n + 1;
      count++;
    }
    if (results.length < take) {
      reachedEnd = true;
      break;
    }
  }
  // The limit was used up exactly: the segment is complete only if nothing follows it.
  if (!reachedEnd) {
    reachedEnd = !(await db.prepare(`SELECT seq FROM ${table} WHERE seq >= ? LIMIT 1`).bind(expected).first());
  }
  return { ok: true, records: count, head: prevHash, from, to: to(), next_after: reachedEnd ? null : to(), complete: reachedEnd };
}
