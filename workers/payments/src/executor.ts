import { ApiError, problemBody } from "../../../shared/errors";
import { commitAudited, type Outcome } from "./audit";
import type { AuditSubject, Ctx, RequestInfo } from "./context";
import { requestInfo } from "./context";
import { claimKey, completeStatement, releaseKey, requestHash, storedKey, type Claim } from "./idempotency";

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

/** The id of what a stored answer is about, for the replay's audit record. */
function replayedResourceId(body: string): string | null {
  try {
    const v = JSON.parse(body) as { id?: unknown; payment?: { id?: unknown } };
    const id = v.id ?? v.payment?.id;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
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
 * stored under the key (Stripe's order).
 */
export async function runStaged(c: Ctx, input: unknown, stage: (info: RequestInfo) => Promise<Staged>): Promise<Response> {
  const info = requestInfo(c);
  const key = await storedKey(info.config.CARD_FINGERPRINT_KEY, c.req.header("idempotency-key") ?? "");
  const hash = await requestHash(info.config.CARD_FINGERPRINT_KEY, c.req.method, c.req.path, input);
  const staged = await stage(info).then(
    (s) => ({ ok: true as const, s }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  const withClaim = staged.ok ? staged.s.withClaim : undefined;
  const claimed = await claimKey(info.db, info.principal.tenantId, info.principal.clientId, key, hash, info.now.getTime(), withClaim);
  if (claimed.kind === "replay") {
    const state = c.get("audit");
    if (state && !state.resourceId) state.resourceId = replayedResourceId(claimed.body);
    return answer(claimed.status, claimed.body, true);
  }
  const claim = claimed.claim;
  try {
    if (!staged.ok) throw staged.err;
    const plan = await staged.s.plan();
    const state = c.get("audit");
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
