import { ApiError, problemBody } from "../../../shared/errors";
import { commitAudited, duplicateRecord, replayedResourceId, type Outcome } from "./audit";
import type { AuditSubject, Ctx, RequestInfo } from "./context";
import { requestInfo } from "./context";
import { claimAnsweredStatements, claimKey, completeStatement, releaseKey, requestHash, storedKey, type Claim, type DuplicateRecord } from "./idempotency";

/**
 * What a write operation decided, before anything is committed: the answer,
 * the statements that make it true, and its audit record. The executor commits
 * them with the idempotency answer in ONE D1 batch.
 */
export interface Plan {
  status: 200 | 201 | 402;
  body: Record<string, unknown>;
  subject: AuditSubject;
  outcome: Outcome;
  code: string | null;
  statements: D1PreparedStatement[];
  /** Undo at the processor when our commit fails after it acted (e.g. void a fresh authorization). */
  compensate?: () => Promise<void>;
  /** When the commit fails: was it because another transition won the race? */
  lostRace?: () => Promise<boolean>;
}

/** Errors after which the same key must work again: nothing happened, and a retry may succeed. */
const RELEASE_CODES = new Set(["concurrent_update", "processor_error", "audit_unavailable"]);

async function settleFailure(info: RequestInfo, claim: Claim, err: unknown): Promise<void> {
  if (err instanceof ApiError && err.status < 500 && !RELEASE_CODES.has(err.code)) {
    // A refusal is an answer too (Stripe stores it): a retry with the key replays it.
    const body = JSON.stringify(problemBody(err, info.requestId));
    await completeStatement(info.db, claim, err.status, body).run();
    return;
  }
  await releaseKey(info.db, claim);
}

async function commit(c: Ctx, info: RequestInfo, plan: Plan, claim: Claim): Promise<string> {
  const body = JSON.stringify(plan.body);
  try {
    await commitAudited(c, info, plan.subject, plan.outcome, plan.code, [
      ...plan.statements,
      completeStatement(info.db, claim, plan.status, body),
    ]);
    return body;
  } catch (err) {
    if (plan.compensate) await plan.compensate();
    if (plan.lostRace && (await plan.lostRace())) {
      throw new ApiError(409, "concurrent_update", "The payment changed while this request ran; retry it.", {
        headers: { "retry-after": "1" },
        extra: { retryable: true },
      });
    }
    throw err;
  }
}

function answer(status: number, body: string, replayed: boolean): Response {
  const headers = new Headers({ "content-type": status >= 400 ? "application/problem+json" : "application/json" });
  if (replayed) headers.set("idempotent-replayed", "true");
  return new Response(body, { status, headers });
}

/**
 * A write split where the Idempotency-Key claim falls: what runs before it needs no key (validation, sealing a
 * card, a processor call decided in memory) and may hand the claim's batch one statement that must take effect
 * exactly when the claim does (`withClaim`, see claimKey); `plan` is the rest, run once the key is ours.
 */
export interface Staged {
  withClaim?: ((guard: string) => D1PreparedStatement) | undefined;
  plan: () => Promise<Plan>;
  /**
   * `plan` acts nowhere outside our database (the processor's answer is already decided, and `withClaim`
   * records it): the claim, the work, the answer and the audit record can then commit as one batch.
   */
  decided?: boolean;
}

type Settled<T> = { ok: true; value: T } | { ok: false; err: unknown };
const settle = <T>(p: Promise<T>): Promise<Settled<T>> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (err: unknown) => ({ ok: false as const, err }),
  );

/**
 * A decided write in ONE batch: the key claimed already answered, the processor's record, the work and the
 * audit record. Undefined when the batch failed, which wrote nothing (a live key, a duplicate, fails it on the
 * key's primary key; so does anything else that fails a batch): runStaged then claims the two-batch way, which
 * answers a duplicate, or retries the commit once the key is held.
 */
async function commitWithClaim(c: Ctx, info: RequestInfo, claim: Claim, plan: Plan, withClaim: Staged["withClaim"]): Promise<Response | undefined> {
  const body = JSON.stringify(plan.body);
  const statements = [...claimAnsweredStatements(info.db, claim, info.now.getTime(), plan.status, body), ...(withClaim ? [withClaim("1")] : []), ...plan.statements];
  try {
    await commitAudited(c, info, plan.subject, plan.outcome, plan.code, statements);
  } catch (err) {
    // Committed, then failed (nudging the sealer): not a duplicate, and nothing to commit again.
    if (c.get("audit")?.written) throw err;
    return undefined;
  }
  const state = c.get("audit");
  if (state) Object.assign(state, plan.subject);
  return answer(plan.status, body, false);
}

/**
 * Runs a POST under its Idempotency-Key: claim, do the work, commit the work,
 * its audit record and the stored answer together; or replay the stored answer.
 */
export function runIdempotent(c: Ctx, input: unknown, work: (info: RequestInfo) => Promise<Plan>): Promise<Response> {
  return runStaged(c, input, (info) => Promise.resolve({ plan: () => work(info) }));
}

/**
 * As runIdempotent, with `stage` run before the claim. A failure of `stage` is answered only once the key is
 * claimed, as if it had happened after: a duplicate still gets its replay, 409 or 422 first, and a refusal is
 * stored under the key (Stripe's order). A decided stage is planned before the claim too, and committed with it in
 * one batch (commitWithClaim); a planning failure is answered as a stage failure.
 */
export async function runStaged(c: Ctx, input: unknown, stage: (info: RequestInfo) => Promise<Staged>): Promise<Response> {
  const info = requestInfo(c);
  const key = await storedKey(info.config.CARD_FINGERPRINT_KEY, c.req.header("idempotency-key") ?? "");
  const hash = await requestHash(info.config.CARD_FINGERPRINT_KEY, c.req.method, c.req.path, input);
  const staged = await settle(stage(info));
  const withClaim = staged.ok ? staged.value.withClaim : undefined;
  const { tenantId, clientId } = info.principal;
  // A decided write is planned before the claim and, as the common case (a new key), committed with it.
  const planned = staged.ok && staged.value.decided ? await settle(staged.value.plan()) : undefined;
  if (planned?.ok) {
    const done = await commitWithClaim(c, info, { tenantId, clientId, key, requestHash: hash }, planned.value, withClaim);
    if (done) return done;
    // The batch failed, most likely on a live key: the claim below then answers a duplicate.
  }
  // A duplicate (a replay, 409 in flight, 422 another request) is recorded in the claim's own batch: its answer in
  // one round trip (a capture's, a void's, a refund's), or two after a decided creation's failed batch.
  const state = c.get("audit");
  const duplicate: DuplicateRecord | undefined = state ? duplicateRecord(c, info, state) : undefined;
  const claimed = await claimKey(info.db, tenantId, clientId, key, hash, info.now.getTime(), withClaim, duplicate);
  if (claimed.kind === "replay") {
    if (state && !state.resourceId) state.resourceId = replayedResourceId(claimed.body);
    return answer(claimed.status, claimed.body, true);
  }
  const claim = claimed.claim;
  try {
    if (!staged.ok) throw staged.err;
    if (planned && !planned.ok) throw planned.err;
    const plan = planned ? planned.value : await staged.value.plan();
    if (state) Object.assign(state, plan.subject);
    const body = await commit(c, info, plan, claim);
    return answer(plan.status, body, false);
  } catch (err) {
    await settleFailure(info, claim, err);
    throw err;
  }
}

/**
 * Hands an executor answer back through a typed route. The answer is either
 * built from the route's own schemas or the stored bytes of such an answer
 * (a replay), so it matches one of the route's declared responses.
 */
export function asRouteResponse<T>(res: Response): T {
  return res as unknown as T;
}
