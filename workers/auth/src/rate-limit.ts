/**
 * Fixed-window limiter for failed client authentication, in D1 so every
 * isolate sees the same counts (OWASP ASVS 2.2.1: anti-automation).
 */
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

export async function checkLocks(
  db: D1Database,
  keys: { key: string; policy: LimitPolicy }[],
  now: number,
): Promise<LimitState> {
  const rows = await db
    .prepare(`SELECT key, window_start, failures FROM auth_failures WHERE key IN (${keys.map(() => "?").join(",")})`)
    .bind(...keys.map((k) => k.key))
    .all<{ key: string; window_start: number; failures: number }>();
  let worst: LimitState = { locked: false };
  for (const { key, policy } of keys) {
    const row = rows.results.find((r) => r.key === key);
    const s = lockState(row ? { windowStart: row.window_start, failures: row.failures } : null, policy, now);
    if (s.locked && (!worst.locked || s.retryAfter > worst.retryAfter)) worst = s;
  }
  return worst;
}

/** Counts one failure against each key; a window that has ended starts again. */
export async function recordFailure(db: D1Database, keys: { key: string; policy: LimitPolicy }[], now: number): Promise<void> {
  await db.batch(
    keys.map(({ key, policy }) =>
      db
        .prepare(
          `INSERT INTO auth_failures (key, window_start, failures) VALUES (?1, ?2, 1)
           ON CONFLICT(key) DO UPDATE SET
             failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
             window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END`,
        )
        .bind(key, now, policy.windowSeconds),
    ),
  );
}

export async function clearFailures(db: D1Database, key: string): Promise<void> {
  await db.prepare("DELETE FROM auth_failures WHERE key = ?").bind(key).run();
}
