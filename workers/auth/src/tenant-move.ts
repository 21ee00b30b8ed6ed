import type { Context } from "hono";
import { z } from "zod";
import { ApiError } from "../../../shared/errors";
import { logger } from "../../../shared/logger";
import { MAX_SHARDS } from "../../../shared/tenants";
import { clientIp } from "./bearer";
import { oauthError } from "./client-auth";
import { authConfig } from "./config";
import { callInternal } from "./internal-call";
import { OffboardTenant } from "./offboard";
import { noteTenantCutoff } from "./revocation/view";
import type { AdminCaller } from "./tenant-access";
import { TenantStore, type Tenant } from "./tenants";
import type { AuthEnv } from "./types";

/**
 * Moving a tenant's PHI to another shard (README "Tenants, shards and scale"). Auth owns the
 * placement and the freeze; phi copies, verifies and removes rows, one bounded step per call over
 * the service binding (workers/phi/src/move/). The order keeps the tenant readable on its source
 * until the destination is proven complete: freeze, settle, copy, verify, switch, purge.
 */
export const MoveTenant = z
  .object({
    shard: z.number().int().min(0).max(MAX_SHARDS - 1).describe("The PHI shard to move the tenant to: 0 .. PHI_SHARDS-1, not its current one"),
    reason: OffboardTenant.shape.reason.describe("Why the tenant moves: one line of printable text, kept in the security event"),
  })
  .strict();

/** The token endpoint's answer while the client's tenant is being moved (RFC 6749 5.2 has no better code). */
export function tenantMoving(): ApiError {
  return oauthError(503, "temporarily_unavailable", "This client's organization is being moved; ask again shortly.", { "retry-after": "5" });
}

type Counts = Record<string, number>;
interface Cursor {
  table: number;
  after: number;
}
type Step = "check" | "clear" | "copy" | "verify" | "purge" | "discard";

/** A move left unfinished (its worker died) may be taken over after this long without progress. */
export const MOVE_LEASE_MS = 10 * 60_000;

/** One step on phi, as the platform admin who asked, with a principal only auth can sign. */
async function phiStep(c: Context<AuthEnv>, caller: AdminCaller, tenant: string, body: { step: Step; from: number; to: number; cursor?: Cursor | null }) {
  const res = await callInternal(c.env, caller, { service: "phi", path: `/internal/tenants/${tenant}/move`, body, requestId: c.get("requestId"), ip: clientIp(c) });
  const json: unknown = await res.json().catch(() => null);
  return { status: res.status, json: (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown> };
}

function add(into: Counts, more: unknown): void {
  if (typeof more !== "object" || more === null) return;
  for (const [k, v] of Object.entries(more)) if (typeof v === "number") into[k] = (into[k] ?? 0) + v;
}

/** Runs a cursor-driven step to its end; the counts it reported, summed. Throws on any refusal. */
async function runStep(
  c: Context<AuthEnv>,
  caller: AdminCaller,
  t: Tenant,
  step: Step,
  to: number,
  renew: () => Promise<void>,
): Promise<Counts> {
  const counts: Counts = {};
  let cursor: Cursor | null = null;
  do {
    await renew();
    const r = await phiStep(c, caller, t.id, { step, from: t.shard, to, cursor });
    if (r.status !== 200) throw new MoveStepFailed(step, r.status, r.json);
    add(counts, r.json.copied ?? r.json.removed);
    cursor = (r.json.cursor ?? null) as Cursor | null;
  } while (cursor !== null);
  return counts;
}

class MoveStepFailed extends Error {
  constructor(
    readonly step: Step,
    readonly status: number,
    readonly answer: Record<string, unknown>,
  ) {
    super(`tenant move step ${step} answered ${status}`);
  }
}

function takenOver(): ApiError {
  return new ApiError(409, "tenant_move_taken_over", "Another request took this move over (this one had made no progress for the lease).");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Moved {
  tenant: Tenant;
  from: number;
  copied: Counts;
  sourceRemoved: Counts;
  sourcePurged: boolean;
  frozenMs: number;
}

/** Refusals before anything changes: each a clear 4xx. */
async function precheck(c: Context<AuthEnv>, caller: AdminCaller, id: string, to: number): Promise<Tenant> {
  const shards = authConfig(c.env).PHI_SHARDS;
  if (to >= shards) throw new ApiError(400, "shard_not_declared", `This environment has PHI shards 0 to ${shards - 1}.`);
  const t = await new TenantStore(c.env.DB).get(id);
  if (!t) throw new ApiError(404, "tenant_not_found", "No tenant has this id.");
  if (t.offboardedAt) throw new ApiError(409, "tenant_offboarded", "This tenant is offboarded; its data is not moved.");
  if (t.shard === to) throw new ApiError(409, "same_shard", `The tenant is on shard ${to} already.`);
  const check = await phiStep(c, caller, id, { step: "check", from: t.shard, to }).catch((err: unknown) => {
    logger.error("tenant_move_check_failed", { request_id: c.get("requestId"), error_class: err instanceof Error ? err.name : typeof err });
    return { status: 0, json: {} };
  });
  if (check.status === 400) throw new ApiError(400, "shard_not_declared", `PHI shard ${to} is not declared in phi's configuration.`);
  if (check.status !== 200) throw new ApiError(502, "bad_gateway", "phi did not answer the move's check; nothing was changed.");
  return t;
}

/**
 * Freezes the tenant: marks it moving (the token endpoint refuses its clients) and sets its token
 * cut-off (every outstanding token refused). One statement, so two moves never both start; a move
 * whose lease ran out (its worker died) may be taken over by a new request for the same shard.
 */
async function freeze(db: D1Database, t: Tenant, to: number, now: number): Promise<string> {
  const since = new Date(now).toISOString();
  const row = await db
    .prepare(
      `UPDATE tenants SET moving_to = ?1, moving_since = ?2, tokens_not_before = MAX(COALESCE(tokens_not_before, 0), ?3)
       WHERE id = ?4 AND offboarded_at IS NULL AND shard = ?5 AND (moving_to IS NULL OR (moving_to = ?1 AND moving_since < ?6))
       RETURNING tokens_not_before`,
    )
    .bind(to, since, Math.floor(now / 1000) + 1, t.id, t.shard, new Date(now - MOVE_LEASE_MS).toISOString())
    .first<{ tokens_not_before: number }>();
  if (!row) throw new ApiError(409, "tenant_move_in_progress", "A move of this tenant is under way (or it changed meanwhile); try again later.");
  noteTenantCutoff(t.id, row.tokens_not_before);
  return since;
}

export async function moveTenant(c: Context<AuthEnv>, caller: AdminCaller, id: string, to: number): Promise<Moved> {
  const db = c.env.DB;
  const t = await precheck(c, caller, id, to);
  const started = Date.now();
  const lease = { since: await freeze(db, t, to, started) };
  // Progress renews the lease; a lost lease (another request took the move over) stops this one.
  const renew = async () => {
    const next = new Date().toISOString();
    const row = await db.prepare("UPDATE tenants SET moving_since = ?1 WHERE id = ?2 AND moving_since = ?3 RETURNING id").bind(next, id, lease.since).first();
    if (!row) throw takenOver();
    lease.since = next;
  };
  // Every gateway isolate refuses the old tokens within the revocation refresh bound, and the cut-off
  // second must have passed: after this, no request can still write on the source.
  await sleep(authConfig(c.env).REVOCATION_REFRESH_MS + 1000);
  let copied: Counts;
  try {
    await runStep(c, caller, t, "clear", to, renew);
    copied = await runStep(c, caller, t, "copy", to, renew);
    await renew();
    const v = await phiStep(c, caller, id, { step: "verify", from: t.shard, to });
    if (v.status !== 200) throw new MoveStepFailed("verify", v.status, v.json);
  } catch (err) {
    // Another request owns the move now: its copy is not this one's to discard.
    if (err instanceof ApiError && err.code === "tenant_move_taken_over") throw err;
    await rollback(c, caller, t, to, lease, renew);
    if (err instanceof ApiError) throw err;
    const failed = err instanceof MoveStepFailed ? err : undefined;
    logger.error("tenant_move_failed", { request_id: c.get("requestId"), step: failed?.step ?? "unknown", status: failed?.status ?? 0 });
    throw new ApiError(failed?.status === 409 ? 409 : 502, "tenant_move_failed", `The move did not complete; the tenant stays on shard ${t.shard}.`, {
      extra: failed?.answer.verification ? { verification: failed.answer.verification } : {},
    });
  }
  const switched = await db
    .prepare("UPDATE tenants SET shard = ?1, moving_to = NULL, moving_since = NULL WHERE id = ?2 AND moving_to = ?1 AND moving_since = ?3 RETURNING id")
    .bind(to, id, lease.since)
    .first();
  if (!switched) throw takenOver();
  const frozenMs = Date.now() - started;
  // The tenant lives on `to` now; what remains on the source is unreachable (tokens name `to`) and removed.
  let sourceRemoved: Counts = {};
  let sourcePurged = true;
  try {
    sourceRemoved = await runStep(c, caller, t, "purge", to, () => Promise.resolve());
  } catch (err) {
    sourcePurged = false;
    logger.error("tenant_move_purge_failed", { request_id: c.get("requestId"), error_class: err instanceof Error ? err.name : typeof err });
  }
  const moved = await new TenantStore(db).get(id);
  return { tenant: moved ?? { ...t, shard: to }, from: t.shard, copied, sourceRemoved, sourcePurged, frozenMs };
}

/** The destination's copy goes (its audit copies stay, append-only), and the tenant is unfrozen on its source. */
async function rollback(c: Context<AuthEnv>, caller: AdminCaller, t: Tenant, to: number, lease: { since: string }, renew: () => Promise<void>): Promise<void> {
  try {
    await runStep(c, caller, t, "discard", to, renew);
  } catch (err) {
    logger.error("tenant_move_discard_failed", { request_id: c.get("requestId"), error_class: err instanceof Error ? err.name : typeof err });
  }
  // Unfrozen whatever the discard did: the source is complete and the tenant reads it; leftovers on
  // the destination are cleared by the next move's first step.
  await c.env.DB.prepare("UPDATE tenants SET moving_to = NULL, moving_since = NULL WHERE id = ?1 AND moving_to = ?2 AND moving_since = ?3")
    .bind(t.id, to, lease.since)
    .run();
}
