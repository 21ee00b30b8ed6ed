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
 * Logs the event as its own JSON line and stores it in D1. The insert runs in
 * `waitUntil` so a rejected request answers without waiting on storage.
 */
export function recordSecurityEvent(db: D1Database, ctx: { waitUntil(p: Promise<unknown>): void }, e: SecurityEvent): void {
  const severity = SEVERITY[e.type];
  const time = new Date().toISOString();
  logger.warn("security_event", {
    event_type: e.type,
    severity,
    client_id: e.clientId ?? undefined,
    ip: e.ip ?? undefined,
    request_id: e.requestId ?? undefined,
    route: e.route ?? undefined,
    reason: e.reason ?? undefined,
  });
  ctx.waitUntil(
    db
      .prepare(
        "INSERT INTO security_events (time, event_type, severity, client_id, ip, request_id, route, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .bind(time, e.type, severity, e.clientId ?? null, e.ip ?? null, e.requestId ?? null, e.route ?? null, e.reason ?? null)
      .run()
      .catch((err: unknown) =>
        logger.error("security_event_store_failed", { error_class: err instanceof Error ? err.name : typeof err }),
      ),
  );
}
