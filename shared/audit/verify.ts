import { ApiError } from "../errors";
import { GENESIS_HASH, chainHash, ident, splitRow, type ChainValue } from "./hash";
import { latestCheckpoint, type ChainSpec, type Checkpoint } from "./seal";

/** Most records one verification segment checks (the routes' default and maximum `limit`). */
export const VERIFY_LIMIT_MAX = 100_000;

export type BreakReason = "hash_mismatch" | "prev_hash_mismatch" | "gap";

/** Where a segment sits in the chain, and the chain's state: present on every result, ok or not. */
export interface VerifySegment {
  /** Seq of the first sealed record this segment examined; null when there was none after `after`. */
  from: number | null;
  /** Seq of the last record this segment verified intact; null when none was. */
  to: number | null;
  /** Pass as `after` for the next segment; null when this segment reached the sealed head or found a break. */
  next_after: number | null;
  /** True only when this segment verified every sealed record up to the sealed head (and the checkpoint). */
  complete: boolean;
  /** Records of the whole chain sealed (linked) so far. */
  sealed: number;
  /** Records of the whole chain written and not yet sealed (protected by triggers, sealed within the delay). */
  pending: number;
  /** The latest checkpoint the sealer recorded, or null before the first. */
  checkpoint: Checkpoint | null;
}

export type VerifyResult = ({ ok: true; records: number; head: string } | { ok: false; records: number; broken_at: number; reason: BreakReason }) &
  VerifySegment;

export interface VerifyOptions {
  /** Start after this seq (0 = genesis); its stored `hash` is the first link. */
  after?: number;
  /** Check at most this many records (default: all sealed ones). */
  limit?: number;
  /** Rows read per D1 query. */
  pageSize?: number;
  /**
   * The sealer object's own copy of its latest checkpoint (kept outside the audited database): checked
   * like the database's, so rewriting the chain and its checkpoints table together is caught too.
   */
  sealerCheckpoint?: Checkpoint | null;
}

/**
 * Recomputes the sealed chain, or one segment of it, in pages; reports the
 * first broken link. A segment (`after`, `limit`) checks the sealed records
 * after `after`: each one's hash, its link to the one before (starting from the
 * stored hash of record `after`, GENESIS for 0), and that seqs follow on with no
 * record missing. The segment that reaches the sealed head also checks the
 * latest checkpoint: its record must still be there with the hash it had, so
 * removing or rewriting the newest sealed records is caught too. A pending
 * record (not yet sealed) ends the walk; a sealed record after a pending one is
 * a break (the seal columns were cleared). Walking `next_after` from 0 until
 * `complete` proves the whole sealed chain.
 */
export async function verifyChain(db: D1Database, chain: ChainSpec, options: VerifyOptions = {}): Promise<VerifyResult> {
  const table = ident(chain.table);
  const { after = 0, limit = Infinity, pageSize = 1000 } = options;
  if (!Number.isSafeInteger(after) || after < 0) throw new RangeError("after must be an integer >= 0");
  if (!(limit === Infinity || (Number.isSafeInteger(limit) && limit >= 1))) throw new RangeError("limit must be an integer >= 1");
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError("pageSize must be an integer >= 1");

  const [countsRes, anchorRes, checkpoint] = await Promise.all([
    db
      .prepare(`SELECT COUNT(*) AS total, (SELECT COUNT(*) FROM ${table} WHERE hash IS NULL) AS pending FROM ${table}`)
      .first<{ total: number; pending: number }>(),
    after > 0 ? db.prepare(`SELECT hash FROM ${table} WHERE seq = ?`).bind(after).first<{ hash: string | null }>() : Promise.resolve(null),
    latestCheckpoint(db, chain),
  ]);
  const pending = Number(countsRes?.pending ?? 0);
  const state = { sealed: Number(countsRes?.total ?? 0) - pending, pending, checkpoint };

  let prevHash = GENESIS_HASH;
  if (after > 0) {
    if (anchorRes === null) {
      // Record `after` is gone: if later records exist, one was removed (what a walk from genesis reports there).
      const later = await db.prepare(`SELECT seq FROM ${table} WHERE seq > ? ORDER BY seq LIMIT 1`).bind(after).first<{ seq: number }>();
      if (later) {
        return { ok: false, records: 0, broken_at: after, reason: "gap", from: Number(later.seq), to: null, next_after: null, complete: false, ...state };
      }
    }
    if (!anchorRes?.hash) throw new ApiError(404, "audit_record_not_found", "`after` must be 0 or the seq of a sealed record.");
    prevHash = anchorRes.hash;
  }

  let last = after;
  let count = 0;
  let from: number | null = null;
  let reachedHead = false;
  const to = () => (count > 0 ? last : null);
  const broken = (broken_at: number, reason: BreakReason): VerifyResult => ({
    ok: false,
    records: count,
    broken_at,
    reason,
    from,
    to: to(),
    next_after: null,
    complete: false,
    ...state,
  });
  walk: while (count < limit) {
    const take = Math.min(pageSize, limit - count);
    const { results } = await db
      .prepare(`SELECT * FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ?`)
      .bind(last, take)
      .all<Record<string, ChainValue>>();
    for (const row of results) {
      const { seq, prevHash: storedPrev, hash, data } = splitRow(row);
      if (hash === null) {
        // The pending frontier: in one snapshot, nothing after it may be sealed (the sealer links in seq order).
        const edge = await db
          .prepare(`SELECT (SELECT hash FROM ${table} WHERE seq = ?1) AS hash, (SELECT MIN(seq) FROM ${table} WHERE seq > ?1 AND hash IS NOT NULL) AS next`)
          .bind(seq)
          .first<{ hash: string | null; next: number | null }>();
        if (edge?.hash) continue walk; // sealed meanwhile: read on from the last verified record
        if (edge?.next !== null && edge?.next !== undefined) return broken(seq, "hash_mismatch");
        reachedHead = true;
        break walk;
      }
      from ??= seq;
      // Seqs follow on (AUTOINCREMENT, whole batches commit or roll back): a jump the sealer did not link across is a removal.
      if (storedPrev !== prevHash) return broken(seq === last + 1 ? seq : last + 1, seq === last + 1 ? "prev_hash_mismatch" : "gap");
      if ((await chainHash(prevHash, seq, data)) !== hash) return broken(seq, "hash_mismatch");
      prevHash = hash;
      last = seq;
      count++;
    }
    if (results.length < take) {
      reachedHead = true;
      break;
    }
  }
  if (!reachedHead) {
    // The limit was used up exactly: the segment is complete only if no sealed record follows.
    reachedHead = !(await db.prepare(`SELECT seq FROM ${table} WHERE seq > ? AND hash IS NOT NULL LIMIT 1`).bind(last).first());
  }
  for (const cp of reachedHead ? [checkpoint, options.sealerCheckpoint] : []) {
    if (!cp) continue;
    // The newest checkpoint's record must still be in the chain just verified, with its hash.
    if (cp.sealed_up_to > last) return broken(last + 1, "gap");
    const at = await db.prepare(`SELECT hash FROM ${table} WHERE seq = ?`).bind(cp.sealed_up_to).first<{ hash: string | null }>();
    if (cp.sealed_up_to > after && at?.hash !== cp.head_hash) return broken(cp.sealed_up_to, "hash_mismatch");
  }
  return { ok: true, records: count, head: prevHash, from, to: to(), next_after: reachedHead ? null : to(), complete: reachedHead, ...state };
}
