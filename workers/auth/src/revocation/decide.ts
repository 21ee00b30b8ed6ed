/**
 * Pure decisions of the gateway's revocation view (README "Revocation bound"): when an
 * isolate may answer from the revocations and disabled clients it holds in memory, when
 * it must refresh them, and when it must refuse. Times are milliseconds since the epoch
 * and `now` is a parameter, so every branch is tested without waiting.
 */
import { WAIT_FOR_MS } from "../../../../shared/wait-for";

/** What an isolate knows about its own view: plain timestamps, never a promise. */
export interface ViewClock {
  /** Start of the newest successful refresh: the view holds every change D1 committed before it. */
  asOf: number | undefined;
  /** Start of the newest refresh attempt of any outcome (guards against piling up refreshes). */
  refreshStartedAt: number | undefined;
  /** Start of the newest attempt that failed. */
  failedAt: number | undefined;
}

export interface ViewBounds {
  /** A change reaches every isolate within this (while D1 answers). */
  refreshMs: number;
  /** A view older than this is never trusted. */
  maxStalenessMs: number;
}

export type ViewDecision =
  /** Answer from the view. */
  | { kind: "use" }
  /** Answer from the view and refresh it in this request's own `waitUntil`. */
  | { kind: "use_and_refresh" }
  | Load
  /**
   * The view must load, and another request of this isolate started loading it less than
   * `LOAD_WAIT_MS` ago: look again shortly (at this isolate's plain state, never at that
   * request's promise) and answer from what it loaded. `then`: the load to make if it has
   * not landed by the end of the wait.
   */
  | { kind: "wait"; then: Load }
  /** Fail closed without trying: the view is past the hard bound and D1 just failed. */
  | { kind: "refuse" };

/**
 * Refresh before answering, in this request. `fallback`: whether the view may still
 * answer if the refresh fails (only while it is younger than the hard bound).
 */
export type Load = { kind: "load"; reason: "cold" | "overdue" | "stale"; fallback: boolean };

/**
 * How long a request whose view must load waits for the load another request of its isolate
 * has in flight, before it loads its own. A burst of requests on a cold or idle isolate then
 * makes one D1 round trip instead of one each; a load whose request was cancelled holds the
 * others up at most this long.
 */
export const LOAD_WAIT_MS = WAIT_FOR_MS;

/**
 * The view is refreshed in the background once it is half the bound old, so a busy
 * isolate never answers from a view older than `refreshMs` while D1 answers within
 * half of it. An isolate that was idle past the bound refreshes before answering. When
 * refreshes fail, the view still answers until `maxStalenessMs`, then nothing does.
 */
export function decideView(clock: ViewClock, bounds: ViewBounds, now: number, waitMs = LOAD_WAIT_MS): ViewDecision {
  const { asOf, refreshStartedAt, failedAt } = clock;
  // The newest attempt started after the view's last success, has not failed, and is recent: its load is in flight.
  const loading =
    refreshStartedAt !== undefined &&
    (asOf === undefined || refreshStartedAt > asOf) &&
    !(failedAt !== undefined && failedAt >= refreshStartedAt) &&
    now - refreshStartedAt < waitMs;
  const load = (l: Load): ViewDecision => (loading ? { kind: "wait", then: l } : l);
  if (asOf === undefined) return load({ kind: "load", reason: "cold", fallback: false });
  const age = Math.max(0, now - asOf);
  // One attempt per half bound: a refresh in flight, or one that failed moments ago, is not repeated.
  const retryGap = bounds.refreshMs / 2;
  const attempting = refreshStartedAt !== undefined && refreshStartedAt > asOf && now - refreshStartedAt < retryGap;
  const failing = failedAt !== undefined && failedAt > asOf;
  if (age >= bounds.maxStalenessMs) {
    return failing && attempting ? { kind: "refuse" } : load({ kind: "load", reason: "stale", fallback: false });
  }
  if (age < retryGap) return { kind: "use" };
  if (age < bounds.refreshMs || failing) return attempting ? { kind: "use" } : { kind: "use_and_refresh" };
  return load({ kind: "load", reason: "overdue", fallback: true });
}

/** The plain data a view holds. */
export interface ViewData {
  /** Revoked token ids and their `exp` (unix seconds). */
  revoked: ReadonlyMap<string, number>;
  /** Disabled client ids and until when (unix seconds) a token of theirs could still be live. */
  disabled: ReadonlyMap<string, number>;
  /**
   * Per tenant: every token issued (`iat`) before this (unix seconds) is revoked, e.g. when the tenant
   * moved to another shard (its older tokens name the old one). README "Tenants".
   */
  tenantCutoff?: ReadonlyMap<string, number>;
}

export type Refusal = { refused: false } | { refused: true; reason: "revoked" | "client_disabled" };

/** Pure: is this (signature-verified) token refused by the view? */
export function refusalOf(data: ViewData, token: { jti: string; clientId: string; tenantId?: string | undefined; iat?: number }, isBootstrap: boolean): Refusal {
  if (data.revoked.has(token.jti)) return { refused: true, reason: "revoked" };
  const cutoff = token.tenantId === undefined ? undefined : data.tenantCutoff?.get(token.tenantId);
  if (cutoff !== undefined && (token.iat ?? 0) < cutoff) return { refused: true, reason: "revoked" };
  // The bootstrap client lives in configuration, not D1: removing its secret is how it is disabled, and
  // its tokens are refused before the view is asked (bearer.ts `bootstrapStatus`). `isBootstrap` is true
  // only while its secret is configured.
  if (!isBootstrap && data.disabled.has(token.clientId)) return { refused: true, reason: "client_disabled" };
  return { refused: false };
}
