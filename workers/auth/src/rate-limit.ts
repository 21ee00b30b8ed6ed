/**
 * Fixed-window limiter for failed client authentication, in D1 so every
 * isolate sees the same counts (OWASP ASVS 2.2.1: anti-automation).
 */
import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { authFailures } from "./db/schema";

export interface LimitPolicy {
  maxFailures: number;
  windowSeconds: number;
}

export type LimitState = { locked: false } | { locked: true; retryAfter: number };

/** Pure: is this key locked at `now`, given its stored window? */
export function lockState(
  row: { windowStart: number; failures: number } | null | undefined,
  policy: LimitPolicy,
  now: number,
): LimitState {
  if (!row) return { locked: false };
  const windowEnd = row.windowStart + policy.windowSeconds;
  if (now >= windowEnd || row.failures < policy.maxFailures) return { locked: false };
  return { locked: true, retryAfter: Math.max(1, windowEnd - now) };
}

export interface FailureRow {
  key: string;
  windowStart: number;
  failures: number;
}

/** The stored windows of these keys (one query; batched with the client lookup on the token path). */
export function failuresQuery(db: D1Database, keys: string[]) {
  return drizzle(db).select().from(authFailures).where(inArray(authFailures.key, keys));
}

/** Pure: the worst lock among the keys, from their stored windows. */
export function locksFrom(rows: FailureRow[], keys: { key: string; policy: LimitPolicy }[], now: number): LimitState {
  let worst: LimitState = { locked: false };
  for (const { key, policy } of keys) {
    const s = lockState(rows.find((r) => r.key === key), policy, now);
    if (s.locked && (!worst.locked || s.retryAfter > worst.retryAfter)) worst = s;
  }
  return worst;
}

/**
 * Pure: the answer to an attempt whose credentials failed. The per-client lock is checked
 * before the credentials (a locked client is refused even with the right ones); the
 * per-address limit only refuses FAILING attempts, so a correct client behind a busy NAT
 * still gets its token. Once the address is over its limit a failure answers 429 and is no
 * longer counted against the address (its window is already full); it still counts against
 * a client that exists, so guessing one client's secret from there still locks that client.
 * A failure naming no existing client counts against the address only: an attacker-chosen id
 * never gets a row of its own (the address's limit bounds those attempts).
 */
export function failureOutcome(
  address: LimitState,
  clientExists: boolean,
): { status: 401 | 429; retryAfter?: number; count: ("address" | "client")[] } {
  if (address.locked) return { status: 429, retryAfter: address.retryAfter, count: clientExists ? ["client"] : [] };
  return { status: 401, count: clientExists ? ["address", "client"] : ["address"] };
}

/** At most this many ended windows are deleted per recorded failure (more than a failure can add). */
export const FAILURE_PRUNE_LIMIT = 100;

/**
 * Counts one failure against each key; a window that has ended starts again. In the same batch,
 * up to FAILURE_PRUNE_LIMIT windows of any key that ended `retainSeconds` (the longest window of
 * any policy) ago or more are deleted (index `auth_failures_window_start`): such a row locks
 * nothing, and a later failure would restart it anyway. The success path writes none of this.
 */
export async function recordFailure(db: D1Database, keys: { key: string; policy: LimitPolicy }[], now: number, retainSeconds: number): Promise<void> {
  await db.batch([
    ...keys.map(({ key, policy }) =>
      db
        .prepare(
          `INSERT INTO auth_failures (key, window_start, failures) VALUES (?1, ?2, 1)
           ON CONFLICT(key) DO UPDATE SET
             failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
             window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END`,
        )
        .bind(key, now, policy.windowSeconds),
    ),
    db
      .prepare("DELETE FROM auth_failures WHERE key IN (SELECT key FROM auth_failures WHERE window_start <= ?1 LIMIT ?2)")
      .bind(now - Math.max(retainSeconds, ...keys.map((k) => k.policy.windowSeconds)), FAILURE_PRUNE_LIMIT),
  ]);
}

export async function clearFailures(db: D1Database, key: string): Promise<void> {
  await db.prepare("DELETE FROM auth_failures WHERE key = ?").bind(key).run();
}
