import { logger } from "../../../shared/logger";

export type SecurityEventType =
  | "client_auth_failed"
  | "client_lockout"
  | "token_missing"
  | "token_malformed"
  | "token_invalid_signature"
  | "token_expired"
  | "token_revoked"
  | "token_client_disabled"
  | "token_invalid_claims"
  | "scope_denied"
  | "principal_header_spoofed"
  | "tenant_offboarded"
  | "tenant_data_keys_destroyed"
  | "tenant_moved"
  | "tenant_move_failed";

export type Severity = "low" | "medium" | "high";

const SEVERITY: Record<SecurityEventType, Severity> = {
  client_auth_failed: "medium",
  client_lockout: "high",
  token_missing: "low",
  token_malformed: "medium",
  token_invalid_signature: "high",
  token_expired: "low",
  token_revoked: "medium",
  token_client_disabled: "medium",
  token_invalid_claims: "medium",
  scope_denied: "medium",
  principal_header_spoofed: "high",
  tenant_offboarded: "high",
  tenant_data_keys_destroyed: "high",
  tenant_moved: "high",
  tenant_move_failed: "high",
};

export interface SecurityEvent {
  type: SecurityEventType;
  clientId?: string | null;
  ip?: string | null;
  requestId?: string | null;
  route?: string | null;
  /** A fixed internal reason code (never a token, secret or input value). */
  reason?: string | null;
}

export function severityOf(type: SecurityEventType): Severity {
  return SEVERITY[type];
}

/**
 * Which events always get a D1 row and which are bounded per isolate. Bounded: every type a caller
 * can trigger at will, because each costs the caller one cheap request and would cost the auth
 * database one write. No credential at all: a missing, malformed or forged token, bad client
 * credentials, a spoofed principal header, and `client_lockout` (an address over its limit gets one
 * per further failing attempt, and any caller who knows a client id can keep that client locked).
 * An old, revoked or disabled client's token, or a valid token without the scope, can be replayed
 * as often as its holder likes. Always stored: the tenant operations, which only a platform admin
 * can start and which each change or destroy a tenant's state (offboarding, the destruction of its
 * data keys, a shard move and its failure): rare, and the record an operator needs afterwards.
 * A Record so that a new event type has to be placed in one class or the other.
 */
const STORAGE: Record<SecurityEventType, "bounded" | "always"> = {
  client_auth_failed: "bounded",
  client_lockout: "bounded",
  token_missing: "bounded",
  token_malformed: "bounded",
  token_invalid_signature: "bounded",
  token_expired: "bounded",
  token_revoked: "bounded",
  token_client_disabled: "bounded",
  token_invalid_claims: "bounded",
  scope_denied: "bounded",
  principal_header_spoofed: "bounded",
  tenant_offboarded: "always",
  tenant_data_keys_destroyed: "always",
  tenant_moved: "always",
  tenant_move_failed: "always",
};

/** The event types stored for every occurrence, whatever the rate. */
export const ALWAYS_STORED_EVENTS: readonly SecurityEventType[] = (Object.keys(STORAGE) as SecurityEventType[]).filter((t) => STORAGE[t] === "always");

/** The length of a storage window, per isolate and event type. */
export const SECURITY_EVENT_WINDOW_MS = 60_000;
/** At most this many rows of one bounded type are written per window and isolate; the rest are logged and counted only. */
export const SECURITY_EVENT_ROWS_PER_WINDOW = 20;

/** One bounded type's window in this isolate: plain data, at most one entry per event type. */
interface StorageWindow {
  start: number;
  stored: number;
  /** Events of this type not stored since `suppressedSince` (carried by the next row stored). */
  suppressed: number;
  suppressedSince: number;
}

const windows = new Map<SecurityEventType, StorageWindow>();

/** For tests: forget every window, as a new isolate would. */
export function resetSecurityEventWindowsForTests(): void {
  windows.clear();
}

/**
 * Whether this event gets a D1 row, and, for the first row after events of its type were left out,
 * the fixed note that says how many and since when (counts and times only, never an input value).
 * A fixed window per type: an anonymous flood costs the auth database at most
 * SECURITY_EVENT_ROWS_PER_WINDOW writes per type, window and isolate.
 */
function admit(type: SecurityEventType, now: number): { store: false; first: boolean } | { store: true; note?: string } {
  if (STORAGE[type] === "always") return { store: true };
  let w = windows.get(type);
  if (!w) {
    w = { start: now, stored: 0, suppressed: 0, suppressedSince: 0 };
    windows.set(type, w);
  } else if (now - w.start >= SECURITY_EVENT_WINDOW_MS) {
    // A new window; what the last one left out is still to be told. A clock that went back (an injected
    // `now`) stays in the current window: never more rows.
    w.start = now;
    w.stored = 0;
  }
  if (w.stored >= SECURITY_EVENT_ROWS_PER_WINDOW) {
    if (w.suppressed === 0) w.suppressedSince = now;
    w.suppressed++;
    return { store: false, first: w.suppressed === 1 };
  }
  w.stored++;
  if (w.suppressed === 0) return { store: true };
  const note = `${w.suppressed} more ${type} events not stored since ${new Date(w.suppressedSince).toISOString()} (at most ${SECURITY_EVENT_ROWS_PER_WINDOW} rows per ${SECURITY_EVENT_WINDOW_MS / 1000} s per isolate)`;
  w.suppressed = 0;
  return { store: true, note };
}

/**
 * Logs the event as its own JSON line and stores it in D1, within the per-isolate bound for the
 * types a caller can trigger at will (`STORAGE`): past it the event is logged (`stored: false`)
 * and counted in the metric only. The insert runs in `waitUntil` so a rejected request answers
 * without waiting on storage. `now` is milliseconds since the epoch.
 */
export function recordSecurityEvent(db: D1Database, ctx: { waitUntil(p: Promise<unknown>): void }, e: SecurityEvent, now: number = Date.now()): void {
  const severity = SEVERITY[e.type];
  const time = new Date(now).toISOString();
  const decision = admit(e.type, now);
  logger.warn("security_event", {
    event_type: e.type,
    severity,
    client_id: e.clientId ?? undefined,
    ip: e.ip ?? undefined,
    request_id: e.requestId ?? undefined,
    route: e.route ?? undefined,
    reason: e.reason ?? undefined,
    stored: decision.store,
  });
  if (!decision.store) {
    // Once per type and window: rows of this type are being left out from here on.
    if (decision.first) logger.warn("security_event_rows_limited", { event_type: e.type, rows_per_window: SECURITY_EVENT_ROWS_PER_WINDOW, window_ms: SECURITY_EVENT_WINDOW_MS });
    return;
  }
  const reason = decision.note === undefined ? (e.reason ?? null) : e.reason ? `${e.reason}; ${decision.note}` : decision.note;
  ctx.waitUntil(
    db
      .prepare(
        "INSERT INTO security_events (time, event_type, severity, client_id, ip, request_id, route, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .bind(time, e.type, severity, e.clientId ?? null, e.ip ?? null, e.requestId ?? null, e.route ?? null, reason)
      .run()
      .catch((err: unknown) =>
        logger.error("security_event_store_failed", { error_class: err instanceof Error ? err.name : typeof err }),
      ),
  );
}
