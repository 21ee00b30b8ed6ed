/**
 * The gateway's per-isolate view of revoked tokens and disabled clients, so that a valid
 * token is verified without a D1 round trip (README "Revocation bound").
 *
 * Module state is plain data only. A request that finds the view due refreshes it
 * itself, in its own `waitUntil` or (cold, overdue, stale) before it answers; no
 * request ever awaits a refresh another request started. A request that must load while
 * another request's load is in flight polls the plain timestamps on its own timer instead (shared/wait-for.ts)
 * (a burst on a cold or idle isolate makes one D1 round trip), for at most LOAD_WAIT_MS.
 * Concurrent refreshes may still happen and are harmless: each merges what it read, and
 * the `seq` cursor only moves on.
 */
import { logger } from "../../../../shared/logger";
import { waitFor } from "../../../../shared/wait-for";
import { decideView, LOAD_WAIT_MS, refusalOf, type ViewBounds } from "./decide";

/** Tokens are accepted up to this long after `exp` (the verifier's clock tolerance). */
const EXP_SKEW_SECONDS = 30;
/**
 * A disabled client is held this long beyond the longest token lifetime after it was
 * disabled: covers clock differences between isolates and a lowered token lifetime.
 */
const DISABLED_MARGIN_SECONDS = 3600;

interface View {
  asOf: number;
  /** The highest `revoked_tokens.seq` merged. */
  seq: number;
  revoked: Map<string, number>;
  disabled: Map<string, number>;
  /** Tenant id -> tokens issued before this (unix seconds) are refused. */
  tenantCutoff: Map<string, number>;
}

let view: View | undefined;
let refreshStartedAt: number | undefined;
let failedAt: number | undefined;

export interface ViewOptions extends ViewBounds {
  /** The access token lifetime (seconds): how long a disabled client's tokens may live. */
  tokenTtlSeconds: number;
}

export type RevocationCheck = { ok: true } | { ok: false; reason: "revoked" | "client_disabled" | "unavailable" };

/**
 * Checks a signature-verified token against the view, refreshing the view first or in
 * the background as `decideView` says. `now` is milliseconds since the epoch.
 */
export async function checkRevocation(
  db: D1Database,
  ctx: { waitUntil(p: Promise<unknown>): void },
  opts: ViewOptions,
  token: { jti: string; clientId: string; isBootstrap: boolean; tenantId?: string | undefined; iat?: number },
  nowAtStart: number,
): Promise<RevocationCheck> {
  let now = nowAtStart;
  let d = decideView({ asOf: view?.asOf, refreshStartedAt, failedAt }, opts, now);
  if (d.kind === "wait") {
    // Another request of this isolate is loading the view: decide again on the module's plain timestamps until its
    // load lands or fails, or the wait is over (then load here). `now` moves on by the time waited.
    const { then } = d;
    const settled = await waitFor((waited) => {
      const at = nowAtStart + waited;
      const next = decideView({ asOf: view?.asOf, refreshStartedAt, failedAt }, opts, at);
      return next.kind === "wait" ? undefined : { next, at };
    }, LOAD_WAIT_MS);
    d = settled?.next ?? then;
    now = settled?.at ?? nowAtStart + LOAD_WAIT_MS;
  }
  if (d.kind === "refuse") return { ok: false, reason: "unavailable" };
  if (d.kind === "use_and_refresh") ctx.waitUntil(refreshView(db, opts, now));
  if (d.kind === "load" && !(await refreshView(db, opts, now)) && !d.fallback) {
    logger.error("revocation_view_unavailable", { reason: d.reason, age_ms: view ? now - view.asOf : null });
    return { ok: false, reason: "unavailable" };
  }
  // A failed load with `fallback` answers from the view: it is still within the hard bound.
  if (!view) return { ok: false, reason: "unavailable" };
  const r = refusalOf(view, token, token.isBootstrap);
  return r.refused ? { ok: false, reason: r.reason } : { ok: true };
}

interface RevokedRow {
  seq: number;
  jti: string;
  expires_at: number;
}

/**
 * One D1 round trip (a batch, which D1 runs as one transaction): the head of the
 * revocation sequence, the revocations after the last one merged (all live ones when
 * the sequence went backwards, i.e. the table was restored), and the clients disabled
 * recently enough that a token of theirs may be live. Resolves to whether it succeeded;
 * never rejects, so it is safe in `waitUntil`.
 */
export async function refreshView(db: D1Database, opts: ViewOptions, now: number): Promise<boolean> {
  refreshStartedAt = now;
  const nowSec = Math.floor(now / 1000);
  const since = view?.seq ?? 0;
  const retention = opts.tokenTtlSeconds + DISABLED_MARGIN_SECONDS;
  try {
    const [head, revoked, disabled, cutoffs] = await db.batch([
      db.prepare("SELECT COALESCE(MAX(seq), 0) AS head FROM revoked_tokens"),
      db
        .prepare(
          `SELECT seq, jti, expires_at FROM revoked_tokens
           WHERE expires_at >= ?2 AND (seq > ?1 OR ?1 > (SELECT COALESCE(MAX(seq), 0) FROM revoked_tokens))`,
        )
        .bind(since, nowSec - EXP_SKEW_SECONDS),
      db
        .prepare("SELECT id, disabled_at FROM clients WHERE disabled_at >= ?1 AND disabled = 1")
        .bind(new Date((nowSec - retention) * 1000).toISOString()),
      // Tenant cut-offs recent enough that a token issued before one may still be live.
      db.prepare("SELECT id, tokens_not_before FROM tenants WHERE tokens_not_before >= ?1").bind(nowSec - retention),
    ]);
    const headSeq = (head?.results[0] as { head: number } | undefined)?.head ?? 0;
    merge(
      now,
      since,
      headSeq,
      (revoked?.results ?? []) as RevokedRow[],
      (disabled?.results ?? []) as { id: string; disabled_at: string }[],
      retention,
    );
    for (const t of (cutoffs?.results ?? []) as { id: string; tokens_not_before: number }[]) noteTenantCutoff(t.id, t.tokens_not_before);
    return true;
  } catch (err) {
    failedAt = now;
    logger.error("revocation_refresh_failed", { error_class: err instanceof Error ? err.name : typeof err });
    return false;
  }
}

function merge(now: number, since: number, head: number, rows: RevokedRow[], clients: { id: string; disabled_at: string }[], retention: number): void {
  const v: View = view ?? { asOf: now, seq: 0, revoked: new Map(), disabled: new Map(), tenantCutoff: new Map() };
  for (const r of rows) v.revoked.set(r.jti, r.expires_at);
  for (const c of clients) {
    const until = Math.floor(Date.parse(c.disabled_at) / 1000) + retention;
    // A time that does not parse keeps the client refused for the isolate's life rather than never.
    v.disabled.set(c.id, Math.max(v.disabled.get(c.id) ?? 0, Number.isFinite(until) ? until : Infinity));
  }
  // A head below what this refresh asked from means the table was restored: start again from it.
  v.seq = head < since ? head : Math.max(v.seq, head);
  v.asOf = Math.max(v.asOf, now);
  prune(v, Math.floor(now / 1000), retention);
  view = v;
}

/** A revocation is kept this long past its token's `exp` (verifiers stop accepting at `exp` + 30 s). */
export const REVOKED_KEEP_SECONDS = 3600;
/** At most this many old revocations are deleted per revocation (the table shrinks faster than it grows). */
export const REVOKED_PRUNE_LIMIT = 100;

/**
 * The statement that deletes revocations whose token expired over REVOKED_KEEP_SECONDS ago, at
 * most REVOKED_PRUNE_LIMIT (index `revoked_tokens_expires_at`), for the revoke handler's batch.
 * Safe for the views: no view or introspection consults a row past `exp` + skew, and the row
 * with the highest `seq` is always kept, so `MAX(seq)` never goes backwards by pruning (which
 * `refreshView` would take for a restored table: a full reload, correct but wasted). AUTOINCREMENT
 * never reuses a deleted `seq`, so a later revocation is still above every isolate's cursor.
 */
export function pruneRevokedStatement(db: D1Database, nowSec: number): D1PreparedStatement {
  return db
    .prepare(
      `DELETE FROM revoked_tokens WHERE seq IN (
         SELECT seq FROM revoked_tokens WHERE expires_at < ?1 AND seq < (SELECT MAX(seq) FROM revoked_tokens) LIMIT ?2)`,
    )
    .bind(nowSec - REVOKED_KEEP_SECONDS, REVOKED_PRUNE_LIMIT);
}

/** Entries that can no longer refuse a live token are dropped, so the view stays small. */
function prune(v: View, nowSec: number, retention: number): void {
  for (const [jti, exp] of v.revoked) if (exp + EXP_SKEW_SECONDS < nowSec) v.revoked.delete(jti);
  for (const [id, until] of v.disabled) if (until < nowSec) v.disabled.delete(id);
  // Past the token lifetime (and the margin) no token issued before a cut-off can be live.
  for (const [id, cutoff] of v.tenantCutoff) if (cutoff + retention < nowSec) v.tenantCutoff.delete(id);
}

/** Tokens of `tenantId` issued before `notBefore` (unix seconds) are refused here from now on. */
export function noteTenantCutoff(tenantId: string, notBefore: number): void {
  if (view) view.tenantCutoff.set(tenantId, Math.max(view.tenantCutoff.get(tenantId) ?? 0, notBefore));
}

/** This isolate revoked a token: refuse it here at once (the others within the bound). */
export function noteRevoked(jti: string, exp: number): void {
  view?.revoked.set(jti, exp);
}

/** This isolate disabled clients: refuse their tokens here at once (the others within the bound). */
export function noteClientsDisabled(ids: readonly string[], opts: ViewOptions, now: number): void {
  const until = Math.floor(now / 1000) + opts.tokenTtlSeconds + DISABLED_MARGIN_SECONDS;
  for (const id of ids) view?.disabled.set(id, until);
}

/** The view's size, age and cursor (tests and diagnostics; no identifiers). */
export function viewStats(now: number): { ageMs: number; revoked: number; disabled: number; seq: number; tenantCutoffs: number } | undefined {
  return view && { ageMs: now - view.asOf, revoked: view.revoked.size, disabled: view.disabled.size, seq: view.seq, tenantCutoffs: view.tenantCutoff.size };
}
