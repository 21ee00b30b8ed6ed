import type { PhiEnv } from "../env";
import type { Context, MiddlewareHandler } from "hono";
import { ApiError, isStorageError } from "../../../../shared/errors";
import { logger } from "../../../../shared/logger";
import { describeRequest, outcomeFor, parsePurpose, serverIds, traceIdOf, type AuditAction } from "./describe";
import { actorFrom, appendAudit, type AuditActor, type DecidedColumns } from "./trail";

/** Per-request audit state: handlers that record their own access mark it done. */
export interface AuditState {
  actor: AuditActor;
  done: boolean;
  /**
   * Patients the request concerns, when known before it failed (e.g. an Observation's subject), as the client
   * named them: a failure's record keeps only the server ids among them (`serverIds`).
   */
  patients: string[];
}

declare module "hono" {
  interface ContextVariableMap {
    phiAudit: AuditState;
  }
}

export function auditState(c: Context): AuditState {
  return c.get("phiAudit");
}

/**
 * Exactly one audit record per /v1 access (HIPAA 164.312(b)): a successful handler
 * writes its own (with the data, in one batch); anything else (denied, failed,
 * invalid, not found) is recorded here after the fact. If that record cannot be
 * written the response becomes a 503: no access without a record.
 */
export function auditEveryAccess(): MiddlewareHandler<PhiEnv> {
  return async (c, next) => {
    const principal = c.get("principal");
    const purpose = parsePurpose(c.req.header("x-purpose-of-use"));
    const state: AuditState = {
      actor: actorFrom(principal, {
        purposeOfUse: purpose ?? "invalid",
        requestId: c.get("requestId"),
        traceId: traceIdOf(c.req.header("traceparent")),
      }),
      done: false,
      patients: [],
    };
    c.set("phiAudit", state);
    if (purpose === undefined) {
      await recordFailure(c, state, 400, "invalid_purpose_of_use");
      throw new ApiError(400, "invalid_purpose_of_use", "X-Purpose-Of-Use must be a PurposeOfUse code such as TREAT.");
    }
    await next();
    if (state.done) return;
    const reason =
      c.error instanceof ApiError
        ? c.error.code
        : c.res.status === 404
          ? "not_found"
          : isStorageError(c.error)
            ? "storage_unavailable"
            : c.error
              ? "internal_error"
              : "";
    await recordFailure(c, state, c.res.status, reason);
  };
}

async function recordFailure(c: Context<PhiEnv>, state: AuditState, status: number, reason: string): Promise<void> {
  const d = describeRequest(c.req.method, new URL(c.req.url).pathname);
  // Ids a client put in a Bundle entry's URL or a subject (a name, an SSN) never reach the trail: server ids only, as
  // batch entries record; the path's own id is already `(not a server id)` when it is not one (describeRequest).
  const named = serverIds(state.patients);
  const patients = named.length > 0 ? named : d.resourceType === "Patient" && d.resourceId ? [d.resourceId] : [];
  try {
    await appendAudit(
      c,
      state.actor,
      { ...d, patientIds: patients, outcome: outcomeFor(status), reason },
      new Date(),
    );
    state.done = true;
  } catch (err) {
    logger.error("audit_failure_record_lost", { request_id: state.actor.requestId, action: d.action });
    if (err instanceof ApiError) throw err;
    throw new ApiError(503, "audit_unavailable", "The audit trail could not be written; nothing was done.");
  }
}

/** For handlers: record their successful access (and commit `statements` with it, one batch). */
export async function recordSuccess(
  c: Context<PhiEnv>,
  ev: { action: AuditAction; resourceType: string; resourceId: string; patientIds: string[] },
  now: Date,
  statements: D1PreparedStatement[] = [],
): Promise<D1Result[]> {
  return recordAccess(c, ev, now, statements);
}

/**
 * For handlers whose outcome depends on the data: `statements` and the record in
 * one batch, with the record's outcome (and patients) decided by SQL over the
 * same snapshot. The request counts as recorded whatever the handler answers next.
 */
export async function recordAccess(
  c: Context<PhiEnv>,
  ev: { action: AuditAction; resourceType: string; resourceId: string; patientIds: string[] },
  now: Date,
  statements: D1PreparedStatement[],
  decided: DecidedColumns = {},
): Promise<D1Result[]> {
  const state = auditState(c);
  const results = await appendAudit(c, state.actor, { ...ev, outcome: "success", reason: "" }, now, statements, decided);
  state.done = true;
  return results;
}
