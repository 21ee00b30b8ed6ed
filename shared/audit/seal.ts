import { GENESIS_HASH, chainHash, ident, splitRow, type ChainValue } from "./hash";

/** One chain: its records' table and its checkpoints' table. */
export interface ChainSpec {
  table: string;
  checkpoints: string;
}

export interface Checkpoint {
  sealed_up_to: number;
  head_hash: string;
  sealed_count: number;
  batch: number;
  at: string;
}

export interface SealResult {
  /** Records linked by this run. */
  sealed: number;
  /** The checkpoint this run recorded; null when there was nothing to seal. */
  checkpoint: Checkpoint | null;
  /** True when more pending records remain than one run seals. */
  more: boolean;
  /** The database's size in bytes after the run, as D1 reports it (`meta.size_after`); 0 when it reports none. */
  databaseBytes: number;
  /**
   * Set when the run refused to seal because the chain in the database no longer extends the sealer's own
   * checkpoint (see `regression`); nothing was written.
   */
  regressed?: string;
}

/** Records one run links at most: D1 batches stay small and the run short. */
export const SEAL_BATCH_MAX = 500;

/**
 * Links the pending records of `chain` into the hash chain, in seq order, and
 * records a checkpoint, all in one D1 batch. Only the chain's single sealer
 * (one Durable Object per chain, ./sealer.ts) calls this; each UPDATE is still
 * guarded by `hash IS NULL`, and the triggers allow the seal columns to change
 * once, so even a second concurrent run could not relink a sealed record.
 */
export async function sealPending(
  db: D1Database,
  chain: ChainSpec,
  now: Date,
  max = SEAL_BATCH_MAX,
  expected: Checkpoint | null = null,
): Promise<SealResult> {
  const table = ident(chain.table);
  const checkpoints = ident(chain.checkpoints);
  const [headRes, pendingRes, countRes, markRes] = await db.batch([
    db.prepare(`SELECT seq, hash FROM ${table} WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1`),
    db.prepare(`SELECT * FROM ${table} WHERE hash IS NULL ORDER BY seq LIMIT ?`).bind(max + 1),
    db.prepare(`SELECT sealed_count FROM ${checkpoints} ORDER BY id DESC LIMIT 1`),
    // The record the sealer's own checkpoint ends at, as the database holds it now.
    db.prepare(`SELECT hash FROM ${table} WHERE seq = ?`).bind(expected?.sealed_up_to ?? 0),
  ]);
  const head = (headRes?.results[0] as { seq: number; hash: string } | undefined) ?? null;
  const pending = (pendingRes?.results ?? []) as Record<string, ChainValue>[];
  const databaseBytes = sizeAfter(countRes);
  if (expected) {
    const mark = (markRes?.results[0] as { hash: string | null } | undefined) ?? null;
    const regressed = regression(expected, mark, pending[0]?.seq);
    if (regressed) return { sealed: 0, checkpoint: null, more: false, databaseBytes, regressed };
  }
  const more = pending.length > max;
  const batch = pending.slice(0, max);
  if (batch.length === 0) return { sealed: 0, checkpoint: null, more: false, databaseBytes };

  let prevHash = head?.hash ?? GENESIS_HASH;
  const at = now.toISOString();
  const links: { s: number; p: string; h: string }[] = [];
  let last = head?.seq ?? 0;
  for (const row of batch) {
    const { seq, data } = splitRow(row);
    const hash = await chainHash(prevHash, seq, data);
    links.push({ s: seq, p: prevHash, h: hash });
    prevHash = hash;
    last = seq;
  }
  const before = Number((countRes?.results[0] as { sealed_count?: number } | undefined)?.sealed_count ?? 0);
  const checkpoint: Checkpoint = { sealed_up_to: last, head_hash: prevHash, sealed_count: before + batch.length, batch: batch.length, at };
  // The whole run's links in ONE statement (the links as one JSON parameter, joined by seq) rather than one
  // UPDATE per record: a run of n records costs the database two statements, not n + 1. Each row is still
  // guarded by `hash IS NULL` and by the seal-once trigger, which fires per row as before. The unary `+` keeps
  // SQLite from driving the join from an index on `hash` (every pending row times every link): the links lead,
  // each finds its row by seq (the rowid).
  const [, recorded] = await db.batch([
    db
      .prepare(
        `UPDATE ${table} SET prev_hash = l.p, hash = l.h, sealed_at = ?1
         FROM (SELECT json_extract(value, '$.s') AS s, json_extract(value, '$.p') AS p, json_extract(value, '$.h') AS h FROM json_each(?2)) AS l
         WHERE ${table}.seq = l.s AND +${table}.hash IS NULL`,
      )
      .bind(at, JSON.stringify(links)),
    db
      .prepare(`INSERT INTO ${checkpoints} (sealed_up_to, head_hash, sealed_count, batch, at) VALUES (?, ?, ?, ?, ?)`)
      .bind(checkpoint.sealed_up_to, checkpoint.head_hash, checkpoint.sealed_count, checkpoint.batch, checkpoint.at),
  ]);
  return { sealed: batch.length, checkpoint, more, databaseBytes: sizeAfter(recorded) };
}

/**
 * Why the chain in the database no longer extends the sealer's own checkpoint, or undefined when it does.
 * Sealing links pending records after the newest sealed one; if records up to the checkpoint were unsealed,
 * edited or removed (possible only for someone who dropped the triggers), linking would re-seal the edited
 * records and make them verify. So the sealer refuses: the record the checkpoint ends at must still be there
 * with the checkpoint's hash, and no record at or below it may be pending. Records sealed after the checkpoint
 * (a run whose batch committed but whose checkpoint copy was not stored) do not count against it.
 */
export function regression(expected: Checkpoint, mark: { hash: string | null } | null, firstPendingSeq: ChainValue | undefined): string | undefined {
  if (expected.sealed_up_to <= 0) return undefined;
  if (!mark) return "checkpoint_record_missing";
  if (mark.hash === null) return "sealed_record_unsealed";
  if (mark.hash !== expected.head_hash) return "checkpoint_record_changed";
  if (typeof firstPendingSeq === "number" && firstPendingSeq <= expected.sealed_up_to) return "sealed_record_unsealed";
  return undefined;
}

function sizeAfter(result: D1Result | undefined): number {
  const bytes = (result?.meta as { size_after?: unknown } | undefined)?.size_after;
  return typeof bytes === "number" && Number.isFinite(bytes) ? bytes : 0;
}

export async function latestCheckpoint(db: D1Database, chain: ChainSpec): Promise<Checkpoint | null> {
  return db
    .prepare(`SELECT sealed_up_to, head_hash, sealed_count, batch, at FROM ${ident(chain.checkpoints)} ORDER BY id DESC LIMIT 1`)
    .first<Checkpoint>();
}
