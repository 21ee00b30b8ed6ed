import { hmacHex } from "../../../shared/crypto";
import { sqlValue, type SqlValue } from "../../../shared/audit/append";
import { ApiError } from "../../../shared/errors";

/**
 * Idempotency keys, the Stripe rules: scoped to the tenant and the client (the
 * same key in two tenants is two requests); the first request
 * claims the key with one atomic INSERT; same key and same request replays the
 * stored answer; same key and another request is 422; a duplicate while the
 * first is running is 409 (retryable). Kept 24 h.
 */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** A claim not completed within this is treated as abandoned (its worker died) and can be taken over. */
export const IN_FLIGHT_LOCK_MS = 60 * 1000;

export interface Claim {
  tenantId: string;
  clientId: string;
  key: string;
  requestHash: string;
}

export type ClaimResult = { kind: "claimed"; claim: Claim } | { kind: "replay"; status: number; body: string };

/**
 * Keyed hash of the request (method, path, canonical body). Keyed because
 * bodies can hold card numbers and an unkeyed hash of a PAN is reversible by
 * enumeration (PCI-DSS 3.5.1.1).
 */
export function requestHash(secret: string, method: string, path: string, body: unknown): Promise<string> {
  const canon = canonicalValue(body);
  return hmacHex(secret, `idempotency\u0000${method}\u0000${path}\u0000${canon}`);
}

function canonicalValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalValue).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    const inner = Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalValue(o[k])}`);
    return `{${inner.join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * The key as stored: keyed hash of what the client sent. Clients choose keys
 * freely, so a key could carry anything (even a card number); it is never kept as sent.
 */
export function storedKey(secret: string, key: string): Promise<string> {
  return hmacHex(secret, `idempotency-key\u0000${key}`);
}

/**
 * SQL condition true exactly when the statement just before it in the batch (the claim) inserted or took over
 * the key: SQLite's changes() counts the rows of the last completed INSERT, UPDATE or DELETE on the connection, and
 * a batch runs its statements in order, in one transaction. Valid only in the statement right after the claim.
 */
export const CLAIM_TOOK = "changes() = 1";

/** The codes of claimKey's answers to a duplicate (its errors, and the replay the audit middleware records). */
export const KEY_REUSED = { status: 422, code: "idempotency_key_reused" } as const;
export const IN_FLIGHT = { status: 409, code: "idempotency_in_flight" } as const;
export const REPLAY_CODE = "idempotent_replay";

/**
 * claimKey's answer to a duplicate as SQL, so that the duplicate's audit record can be written in the claim's own
 * batch: the columns of the row source claimKey hands to DuplicateRecord.build, holding the answer's status and code
 * and the stored body when the answer is a replay (NULL otherwise).
 */
export interface DuplicateAnswer {
  status: string;
  code: string;
  body: string;
}

/**
 * The answer decided from the key's row (alias `k`, LEFT JOINed: its columns NULL when the row is gone) and the
 * request's hash (`one.request_hash`), as claimKey decides it in code below: another request under the key (422),
 * one still in flight or the row gone (409), else the stored answer replayed. `test/idempotency.test.ts` compares
 * the records with the answers.
 */
const REUSED_SQL = "(k.key IS NOT NULL AND k.request_hash <> one.request_hash)";
const IN_FLIGHT_SQL = "(k.key IS NULL OR k.state <> 'done' OR k.response_status IS NULL OR k.response_body IS NULL)";
const DUPLICATE_ANSWER_SQL = `SELECT
    CASE WHEN ${REUSED_SQL} THEN ${KEY_REUSED.status} WHEN ${IN_FLIGHT_SQL} THEN ${IN_FLIGHT.status} ELSE k.response_status END AS status,
    CASE WHEN ${REUSED_SQL} THEN '${KEY_REUSED.code}' WHEN ${IN_FLIGHT_SQL} THEN '${IN_FLIGHT.code}' ELSE '${REPLAY_CODE}' END AS code,
    CASE WHEN ${REUSED_SQL} OR ${IN_FLIGHT_SQL} THEN NULL ELSE k.response_body END AS body
  FROM (SELECT ? AS request_hash) AS one LEFT JOIN idempotency_keys AS k ON k.tenant_id = ? AND k.client_id = ? AND k.key = ?`;
const DUPLICATE_ANSWER: DuplicateAnswer = { status: "answer.status", code: "answer.code", body: "answer.body" };

/**
 * The audit record of a request whose claim did not take (a duplicate), written in the claim's own batch: `build`
 * makes the INSERT from the row source `from` and the duplicate's answer as SQL; `written` is called when it was.
 */
export interface DuplicateRecord {
  build: (from: SqlValue, answer: DuplicateAnswer) => D1PreparedStatement;
  written: () => void;
}

export async function claimKey(
  db: D1Database,
  tenantId: string,
  clientId: string,
  key: string,
  hash: string,
  now: number,
  withClaim?: (guard: string) => D1PreparedStatement,
  duplicate?: DuplicateRecord,
): Promise<ClaimResult> {
  // One statement: insert, or take over a key whose 24 h are over or whose claim was abandoned.
  // The WHERE runs under SQLite's write lock, so two requests can never both claim (never check-then-insert).
  // `withClaim` (e.g. the simulated processor's record of its call) runs next, guarded by CLAIM_TOOK, so it
  // takes effect exactly when the claim did. The row is read in the same batch (one round trip): when the
  // claim did not take, it is the other request's.
  const claim = db
    .prepare(
      `INSERT INTO idempotency_keys (tenant_id, client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at)
       VALUES (?7, ?1, ?2, ?3, 'in_flight', NULL, NULL, ?4, ?5, ?6)
       ON CONFLICT (tenant_id, client_id, key) DO UPDATE SET request_hash = ?3, state = 'in_flight', response_status = NULL,
         response_body = NULL, created_at = ?4, locked_until = ?5, expires_at = ?6
       WHERE idempotency_keys.expires_at <= ?4 OR (idempotency_keys.state = 'in_flight' AND idempotency_keys.locked_until <= ?4)`,
    )
    .bind(clientId, key, hash, now, now + IN_FLIGHT_LOCK_MS, now + IDEMPOTENCY_TTL_MS, tenantId);
  const readRow = db
    .prepare("SELECT request_hash, state, response_status, response_body FROM idempotency_keys WHERE tenant_id = ? AND client_id = ? AND key = ?")
    .bind(tenantId, clientId, key);
  // A duplicate's audit record, right after the claim: exactly one row when the claim did not take (one row from a
  // constant, the key's row joined, the answer decided from it), none when it did. So after it, `changes() = 0` is
  // what CLAIM_TOOK was.
  const record = duplicate?.build(sqlValue(`(${DUPLICATE_ANSWER_SQL}) AS answer WHERE changes() = 0`, hash, tenantId, clientId, key), DUPLICATE_ANSWER);
  const took = record ? "changes() = 0" : CLAIM_TOOK;
  const results = await db.batch([claim, ...(record ? [record] : []), ...(withClaim ? [withClaim(took)] : []), readRow]);
  const claimed = results[0];
  const read = results[results.length - 1];
  if (claimed?.meta.changes === 1) return { kind: "claimed", claim: { tenantId, clientId, key, requestHash: hash } };
  if (record && results[1]?.meta.changes === 1) duplicate?.written();
  const row = (read?.results[0] as { request_hash: string; state: string; response_status: number | null; response_body: string | null } | undefined) ?? null;
  if (row && row.request_hash !== hash) {
    throw new ApiError(KEY_REUSED.status, KEY_REUSED.code, "This Idempotency-Key was used with a different request.");
  }
  if (!row || row.state !== "done" || row.response_status === null || row.response_body === null) {
    throw new ApiError(IN_FLIGHT.status, IN_FLIGHT.code, "A request with this Idempotency-Key is in progress; retry later.", {
      headers: { "retry-after": "1" },
      extra: { retryable: true },
    });
  }
  return { kind: "replay", status: row.response_status, body: row.response_body };
}

/**
 * The claim and its answer for a batch that also holds the work (a write decided before the claim, see
 * runStaged): the key freed if its 24 h are over or its claim was abandoned (what claimKey takes over), then
 * inserted already answered. A live key fails the INSERT on the key's primary key and with it the whole batch,
 * so nothing of the work is written; the caller then claims the claimKey way, which answers the duplicate.
 */
export function claimAnsweredStatements(db: D1Database, claim: Claim, now: number, status: number, body: string): D1PreparedStatement[] {
  const { tenantId, clientId, key, requestHash: hash } = claim;
  return [
    db
      .prepare(
        "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND client_id = ?2 AND key = ?3 AND (expires_at <= ?4 OR (state = 'in_flight' AND locked_until <= ?4))",
      )
      .bind(tenantId, clientId, key, now),
    db
      .prepare(
        `INSERT INTO idempotency_keys (tenant_id, client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at)
         VALUES (?, ?, ?, ?, 'done', ?, ?, ?, ?, ?)`,
      )
      .bind(tenantId, clientId, key, hash, status, body, now, now + IN_FLIGHT_LOCK_MS, now + IDEMPOTENCY_TTL_MS),
  ];
}

/** Stores the answer; meant for the same batch as the work it answers for. */
export function completeStatement(db: D1Database, claim: Claim, status: number, body: string): D1PreparedStatement {
  return db
    .prepare(
      "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ? WHERE tenant_id = ? AND client_id = ? AND key = ? AND state = 'in_flight'",
    )
    .bind(status, body, claim.tenantId, claim.clientId, claim.key);
}

/** Gives the key back so a retry with it runs again (the request had no effect). */
export async function releaseKey(db: D1Database, claim: Claim): Promise<void> {
  await db
    .prepare("DELETE FROM idempotency_keys WHERE tenant_id = ? AND client_id = ? AND key = ? AND state = 'in_flight'")
    .bind(claim.tenantId, claim.clientId, claim.key)
    .run();
}

/** Keys deleted per statement when pruning, and statements per scheduled run (bounds one run's work). */
export const PRUNE_BATCH = 1000;
export const PRUNE_MAX_BATCHES = 50;

/**
 * Deletes keys whose 24 h are over, in batches on the `expires_at` index, so the table holds about one
 * day of keys. An expired key is already free to be claimed again (`claimKey` takes it over), so this
 * changes no answer; a claim still in flight is never expired (its lock is far shorter than the TTL).
 * Returns how many keys were deleted; stops after PRUNE_MAX_BATCHES (the next run goes on).
 */
export async function pruneExpiredKeys(db: D1Database, now: number): Promise<{ deleted: number; more: boolean }> {
  const stmt = db.prepare(
    "DELETE FROM idempotency_keys WHERE rowid IN (SELECT rowid FROM idempotency_keys WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
  );
  let deleted = 0;
  for (let i = 0; i < PRUNE_MAX_BATCHES; i++) {
    const res = await stmt.bind(now, PRUNE_BATCH).run();
    deleted += res.meta.changes;
    if (res.meta.changes < PRUNE_BATCH) return { deleted, more: false };
  }
  return { deleted, more: true };
}
