import { Hono } from "hono";
import { auditInsert, commitWithRecord } from "../../../../shared/audit/append";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { destroyKeyStatements, forgetTenantKeys } from "../../../../shared/keys/tenant-keys";
import { overwriteLegacy, SHRED_PATH, shredOrder, type ShredOrder } from "../../../../shared/keys/shred";
import { traceIdOf } from "../audit/describe";
import { sealerName, shardSealers } from "../audit/sealer";
import { actorFrom, AUDIT_TABLE, auditColumns } from "../audit/trail";
import type { PhiEnv } from "../env";
import { shardDatabases } from "../store/shards";

/** Index rows deleted per statement: bounded, so one statement never runs long on a big tenant. */
const INDEX_CHUNK = 5000;

const app = new Hono<PhiEnv>();

/**
 * Crypto-shredding of a tenant (called by auth when a platform admin offboards it), on every shard:
 * the tenant may have lived on more than one (a move) and a tombstone on the others keeps a key from
 * ever being made there. Per shard, one batch destroys the wrapped data key, overwrites any body still
 * sealed under a platform key, and appends the audit record of the destruction to that shard's chain
 * (in the tenant's trail, so the record stays with what it concerns). Then the tenant's blind-index
 * rows go: with the index key, they would still confirm guessed names and identifiers.
 */
app.post(SHRED_PATH, async (c) => {
  const now = new Date();
  const order = await shredOrder(c.req, c.get("principal"), now);
  const actor = actorFrom(c.get("principal"), { purposeOfUse: "HOPERAT", requestId: c.get("requestId"), traceId: traceIdOf(c.req.header("traceparent")) });
  const shards = await Promise.all(
    shardDatabases(c.env).map(async (db, shard) => {
      const record = auditInsert(
        db,
        AUDIT_TABLE,
        auditColumns({ ...actor, tenantId: order.tenant }, { action: "tenant-shred", resourceType: "Tenant", resourceId: order.tenant, patientIds: [], outcome: "success", reason: "" }, now),
      );
      const [overwrite, , legacy] = await commitWithRecord(db, AUDIT_TABLE, [...destroyKeyStatements(db, order), overwriteLegacy(db, "resource_versions", "sealed", order.tenant)], record);
      nudgeFromRequest(c, shardSealers(c.env.AUDIT_SEALER, shard), sealerName(shard), c.env.AUDIT_SEAL_DELAY_MS);
      return { shard, key_destroyed: (overwrite?.meta.changes ?? 0) > 0, legacy_bodies_overwritten: legacy?.meta.changes ?? 0, index_rows_deleted: await deleteIndex(db, order) };
    }),
  );
  forgetTenantKeys(order.tenant);
  return c.json({ service: "phi", tenant: order.tenant, destroyed_at: order.at, shards });
});

async function deleteIndex(db: D1Database, order: ShredOrder): Promise<number> {
  let deleted = 0;
  for (;;) {
    const r = await db
      .prepare("DELETE FROM search_index WHERE rowid IN (SELECT rowid FROM search_index WHERE tenant_id = ? LIMIT ?)")
      .bind(order.tenant, INDEX_CHUNK)
      .run();
    deleted += r.meta.changes;
    if (r.meta.changes < INDEX_CHUNK) return deleted;
  }
}

export { app as internalRoutes };
