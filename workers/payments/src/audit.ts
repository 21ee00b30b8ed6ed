import type { MiddlewareHandler } from "hono";
import { appendChained, type ChainColumns } from "../../../shared/audit-chain";
import { ApiError, isStorageError } from "../../../shared/errors";
import type { AuditSubject, Ctx, PaymentsEnv, RequestInfo } from "./context";
import { requestInfo } from "./context";

export const AUDIT_TABLE = "audit_events";

export type Outcome = "allowed" | "denied" | "refused" | "declined" | "failed";

/** Marks what the handler is about to do; the middleware records it if the handler does not. */
export function beginAudit(c: Ctx, subject: AuditSubject): void {
  c.set("audit", { ...subject, written: false });
}

/** The audit record: who, what, on which resource, outcome, request and trace ids. Never card data. */
export function auditColumns(info: RequestInfo, subject: AuditSubject, outcome: Outcome, code: string | null): ChainColumns {
  return {
    at: info.now.toISOString(),
    actor_sub: info.principal.sub,
    actor_client: info.principal.clientId,
    actor_roles: JSON.stringify(info.principal.roles),
    action: subject.action,
    resource_type: subject.resourceType,
    resource_id: subject.resourceId ?? null,
    outcome,
    code,
    amount: subject.amount ?? null,
    currency: subject.currency ?? null,
    request_id: info.requestId,
    trace_id: info.traceId,
    ip: info.principal.ip,
  };
}

/**
 * Commits `statements` and the audit record in one D1 batch (all or nothing),
 * and marks the request as audited.
 */
export async function commitAudited(
  c: Ctx,
  info: RequestInfo,
  subject: AuditSubject,
  outcome: Outcome,
  code: string | null,
  statements: D1PreparedStatement[],
): Promise<D1Result[]> {
  const { results } = await appendChained(info.db, {
    table: AUDIT_TABLE,
    columns: auditColumns(info, subject, outcome, code),
    statements,
  });
  const state = c.get("audit");
  if (state) state.written = true;
  return results;
}

function outcomeOf(status: number): Outcome {
  if (status < 400) return "allowed";
  if (status === 401 || status === 403) return "denied";
  if (status === 402) return "declined";
  return status >= 500 ? "failed" : "refused";
}

/**
 * Records every action a handler began and did not record itself (reads,
 * refusals, failures, replays). If that record cannot be written the answer is
 * replaced by 503: no access without a record (PCI-DSS 10.2.1, SOX).
 */
export function auditTrail(): MiddlewareHandler<PaymentsEnv> {
  return async (c, next) => {
    await next();
    const state = c.get("audit");
    if (!state || state.written) return;
    const err = c.error;
    const code =
      err instanceof ApiError
        ? err.code
        : isStorageError(err)
          ? "storage_unavailable"
          : c.res.headers.get("idempotent-replayed")
            ? "idempotent_replay"
            : null;
    const info = requestInfo(c);
    await appendChained(info.db, { table: AUDIT_TABLE, columns: auditColumns(info, state, outcomeOf(c.res.status), code) });
    state.written = true;
  };
}
