import { Hono, type Context } from "hono";
import { z } from "zod";
import { auditInsert, commitWithRecord } from "../../../../shared/audit/append";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { ApiError } from "../../../../shared/errors";
import { validationHook } from "../../../../shared/http";
import { MAX_SHARDS, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../../../../shared/tenants";
import { traceIdOf } from "../audit/describe";
import { sealerName, shardSealers } from "../audit/sealer";
import { actorFrom, AUDIT_TABLE, auditColumns, countRecord } from "../audit/trail";
import type { PhiEnv } from "../env";
import { shardDatabase } from "../store/shards";
import type { Shard } from "./audit-copy";
import { copyStep, inventory, removeStep, verifyStep } from "./steps";

/**
 * `POST /internal/tenants/:id/move`: one step of moving a tenant between shards. Not in the
 * gateway's route table, so no client reaches it: only auth's own tenant-move procedure, over the
 * PHI service binding, with a principal it signs for the platform admin who asked.
 */
export const moveRoutes = new Hono<PhiEnv>();

const ShardNo = z.number().int().min(0).max(MAX_SHARDS - 1);
const MoveStep = z
  .object({
    step: z.enum(["check", "clear", "copy", "verify", "purge", "discard"]),
    from: ShardNo,
    to: ShardNo,
    cursor: z
      .object({ table: z.number().int().min(0).max(1000), after: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) })
      .strict()
      .nullable()
      .default(null),
  })
  .strict()
  .refine((b) => b.from !== b.to, { message: "from and to must be different shards", path: ["to"] });

function shard(c: Context<PhiEnv>, n: number): Shard {
  const db = shardDatabase(c.env, n);
  if (!db) throw new ApiError(400, "shard_not_declared", `PHI shard ${n} is not declared in this environment.`);
  return { n, db };
}

/**
 * The move itself in the tenant's trail (HIPAA 164.312(b)): who moved it, in the tenant, on the shard
 * it concerns. `reason` is a fixed code naming the other shard, never the operator's free text
 * (which auth keeps with its security event).
 */
async function recordMove(c: Context<PhiEnv>, on: Shard, tenant: string, action: "tenant-move-in" | "tenant-move-out", outcome: "success" | "failed", reason: string): Promise<void> {
  const actor = {
    ...actorFrom(c.get("principal"), { purposeOfUse: "HOPERAT", requestId: c.get("requestId"), traceId: traceIdOf(c.req.header("traceparent")) }),
    tenantId: tenant,
  };
  const cols = auditColumns(actor, { action, resourceType: "Tenant", resourceId: tenant, patientIds: [], outcome, reason }, new Date());
  await commitWithRecord(on.db, AUDIT_TABLE, [], auditInsert(on.db, AUDIT_TABLE, cols));
  countRecord(action, outcome);
  nudge(c, on.n);
}

function nudge(c: Context<PhiEnv>, n: number): void {
  nudgeFromRequest(c, shardSealers(c.env.AUDIT_SEALER, n), sealerName(n), c.env.AUDIT_SEAL_DELAY_MS);
}

moveRoutes.post("/internal/tenants/:id/move", async (c) => {
  const tenant = c.req.param("id");
  if (!TENANT_ID_PATTERN.test(tenant) || tenant === PLATFORM_TENANT_ID) throw new ApiError(404, "tenant_not_found", "No tenant has this id.");
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_request", "The body must be JSON.");
  }
  const parsed = MoveStep.safeParse(raw);
  if (!parsed.success) {
    validationHook({ success: false, error: parsed.error, target: "json" });
    throw new ApiError(400, "invalid_request", "The request is not valid.");
  }
  const body = parsed.data;
  const src = shard(c, body.from);
  const dst = shard(c, body.to);
  switch (body.step) {
    case "check":
      return c.json({ source: await inventory(src.db, tenant), destination: await inventory(dst.db, tenant) });
    case "clear": {
      const r = await removeStep(dst.db, tenant, body.cursor);
      return c.json({ cursor: r.cursor, removed: r.counts });
    }
    case "copy": {
      const r = await copyStep(src, dst, tenant, body.cursor);
      if ((r.counts[AUDIT_TABLE] ?? 0) > 0) nudge(c, dst.n);
      return c.json({ cursor: r.cursor, copied: r.counts });
    }
    case "verify": {
      const v = await verifyStep(src, dst, tenant);
      if (!v.ok) throw new ApiError(409, "move_not_verified", "The destination does not hold every row and audit record of the tenant.", { extra: { verification: v } });
      await recordMove(c, dst, tenant, "tenant-move-in", "success", `from-shard-${src.n}`);
      return c.json(v);
    }
    case "purge": {
      // The move is recorded on the source before its rows go; a retried purge records it once more.
      if (body.cursor === null) await recordMove(c, src, tenant, "tenant-move-out", "success", `to-shard-${dst.n}`);
      const r = await removeStep(src.db, tenant, body.cursor);
      return c.json({ cursor: r.cursor, removed: r.counts });
    }
    case "discard": {
      if (body.cursor === null) await recordMove(c, dst, tenant, "tenant-move-in", "failed", `rolled-back-from-shard-${src.n}`);
      const r = await removeStep(dst.db, tenant, body.cursor);
      return c.json({ cursor: r.cursor, removed: r.counts });
    }
  }
});
