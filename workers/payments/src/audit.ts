import type { MiddlewareHandler } from "hono";
import { auditInsert, commitWithRecord, sqlValue, type AuditValue } from "../../../shared/audit/append";
import type { ChainColumns } from "../../../shared/audit/hash";
import type { ChainSpec } from "../../../shared/audit/seal";
import { nudgeFromRequest } from "../../../shared/audit/sealer";
import { ApiError, isStorageError } from "../../../shared/errors";
import type { AuditSubject, Ctx, PaymentsEnv, RequestInfo } from "./context";
import { requestInfo } from "./context";
import { REPLAY_CODE, type DuplicateAnswer, type DuplicateRecord } from "./idempotency";

/** payments' chain: its records and its checkpoints (shared/audit). */
export const PAYMENTS_CHAIN: ChainSpec = { table: "audit_events", checkpoints: "audit_events_checkpoints" };
export const AUDIT_TABLE = PAYMENTS_CHAIN.table;

export type Outcome = "allowed" | "denied" | "refused" | "declined" | "failed";

/** Marks what the handler is about to do; the middleware records it if the handler does not. */
export function beginAudit(c: Ctx, subject: AuditSubject): void {
  c.set("audit", { ...subject, written: false });
}

/** The audit record: who, what, on which resource, outcome, request and trace ids. Never card data. */
export function auditColumns(info: RequestInfo, subject: AuditSubject, outcome: Outcome, code: string | null): ChainColumns {
  return {
    at: info.now.toISOString(),
    // The actor's tenant: its auditors (and only they) see this record.
    tenant_id: info.principal.tenantId,
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
 * Commits `statements` and the audit record in one D1 batch (all or nothing,
 * one round trip, no chain head read, no retry), marks the request as audited,
 * and nudges the chain's sealer from this request's waitUntil. Throws ApiError
 * 503 `audit_unavailable` when the record cannot be written (nothing was);
 * a constraint of `statements` is rethrown for the caller to answer.
 */
export async function commitAudited(
  c: Ctx,
  info: RequestInfo,
  subject: AuditSubject,
  outcome: Outcome,
  code: string | null,
  statements: D1PreparedStatement[],
): Promise<D1Result[]> {
  const insert = auditInsert(info.db, AUDIT_TABLE, auditColumns(info, subject, outcome, code));
  const results = await commitWithRecord(info.db, AUDIT_TABLE, statements, insert);
  const state = c.get("audit");
  if (state) state.written = true;
  nudgeFromRequest(c, c.env.AUDIT_SEALER, AUDIT_TABLE, c.env.AUDIT_SEAL_DELAY_MS);
  return results;
}

/**
 * The record of a duplicate (a replay, 409 in flight, 422 another request), written in the claim's batch rather
 * than by the middleware after it (one round trip less): its outcome, code and replayed resource decided by SQL
 * from the key's row (see claimKey). Once written, the request counts as audited and the sealer is nudged.
 */
export function duplicateRecord(c: Ctx, info: RequestInfo, subject: AuditSubject): DuplicateRecord {
  return {
    build: (from, answer) => auditInsert(info.db, AUDIT_TABLE, duplicateColumns(auditColumns(info, subject, "refused", null), answer), from),
    written: () => {
      const state = c.get("audit");
      if (state) state.written = true;
      nudgeFromRequest(c, c.env.AUDIT_SEALER, AUDIT_TABLE, c.env.AUDIT_SEAL_DELAY_MS);
    },
  };
}

/**
 * A duplicate's record columns: `columns` with what the middleware would record of the answer, decided in SQL from
 * the answer's SQL (claimKey's DuplicateAnswer): the outcome of its status (outcomeSql), its code, and the resource
 * the replayed body names unless the route named one.
 */
export function duplicateColumns(columns: ChainColumns, answer: DuplicateAnswer): Record<string, AuditValue> {
  return {
    ...columns,
    outcome: sqlValue(outcomeSql(answer.status)),
    code: sqlValue(answer.code),
    resource_id: columns.resource_id ? columns.resource_id : sqlValue(replayedIdSql(answer.body)),
  };
}

/**
 * The outcome recorded for an answer's status, in code (outcomeOf) and in SQL (outcomeSql) from this one table:
 * inclusive status ranges; any status outside them (another 4xx, a 409, a 422) is `refused`.
 */
const OUTCOMES: readonly (readonly [from: number, to: number, outcome: Outcome])[] = [
  [100, 399, "allowed"],
  [401, 401, "denied"],
  [402, 402, "declined"],
  [403, 403, "denied"],
  [500, 599, "failed"],
];

export function outcomeOf(status: number): Outcome {
  return OUTCOMES.find(([from, to]) => status >= from && status <= to)?.[2] ?? "refused";
}

/** outcomeOf as a SQL expression over the status expression `status`. */
export function outcomeSql(status: string): string {
  return `CASE ${OUTCOMES.map(([from, to, outcome]) => `WHEN (${status}) BETWEEN ${from} AND ${to} THEN '${outcome}'`).join(" ")} ELSE 'refused' END`;
}

/** Where a stored answer names what it is about: a payment's own `id`, or the `payment` of a capture's or refund's answer. */
const REPLAYED_ID_PATHS = [["id"], ["payment", "id"]] as const;

/** The id of what a stored answer is about, for the replay's audit record (a string at one of the paths, else null). */
export function replayedResourceId(body: string): string | null {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return null;
  }
  for (const path of REPLAYED_ID_PATHS) {
    let at: unknown = v;
    for (const name of path) at = at !== null && typeof at === "object" ? (at as Record<string, unknown>)[name] : undefined;
    if (typeof at === "string") return at;
  }
  return null;
}

/** replayedResourceId as a SQL expression over the body expression `body` (NULL for NULL or a body that is not JSON). */
export function replayedIdSql(body: string): string {
  // CASE evaluates lazily: json_type never sees a body that is not JSON.
  const at = (path: readonly string[]) => {
    const p = `$.${path.join(".")}`;
    return `CASE WHEN json_type(${body}, '${p}') = 'text' THEN json_extract(${body}, '${p}') END`;
  };
  return `CASE WHEN json_valid(${body}) THEN COALESCE(${REPLAYED_ID_PATHS.map(at).join(", ")}) END`;
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
            ? REPLAY_CODE
            : null;
    await commitAudited(c, requestInfo(c), state, outcomeOf(c.res.status), code, []);
  };
}
