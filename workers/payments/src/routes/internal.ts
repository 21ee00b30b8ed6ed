import { Hono } from "hono";
import { auditInsert, commitWithRecord } from "../../../../shared/audit/append";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { destroyKeyStatements, forgetTenantKeys } from "../../../../shared/keys/tenant-keys";
import { overwriteLegacy, SHRED_PATH, shredOrder } from "../../../../shared/keys/shred";
import { AUDIT_TABLE, auditColumns } from "../audit";
import { requestInfo, type PaymentsEnv } from "../context";

const app = new Hono<PaymentsEnv>();

/**
 * Crypto-shredding of a tenant's card vault (called by auth when a platform admin offboards it), in one
 * batch with its audit record: the wrapped data key is destroyed, any card sealed under a platform key
 * (before data keys existed) is overwritten, the keyed fingerprints are blanked (with the fingerprint
 * key, a PAN's hash can be brute-forced over the card number space) and the stored idempotent answers
 * go. Payments, refunds and the ledger stay: amounts and states are the books (SOX), not card data.
 */
app.post(SHRED_PATH, async (c) => {
  const info = requestInfo(c);
  const order = await shredOrder(c.req, c.get("principal"), info.now);
  const db = info.db;
  const record = auditInsert(db, AUDIT_TABLE, {
    ...auditColumns(info, { action: "tenant_shred", resourceType: "tenant", resourceId: order.tenant }, "allowed", null),
    // The record stays in the offboarded tenant's trail, with what it concerns.
    tenant_id: order.tenant,
  });
  const [overwrite, , numbers, holders, fingerprints, answers] = await commitWithRecord(
    db,
    AUDIT_TABLE,
    [
      ...destroyKeyStatements(db, order),
      overwriteLegacy(db, "payment_methods", "number_enc", order.tenant),
      overwriteLegacy(db, "payment_methods", "holder_name_enc", order.tenant),
      db.prepare("UPDATE payment_methods SET fingerprint = '' WHERE tenant_id = ? AND fingerprint <> ''").bind(order.tenant),
      db.prepare("DELETE FROM idempotency_keys WHERE tenant_id = ?").bind(order.tenant),
    ],
    record,
  );
  nudgeFromRequest(c, c.env.AUDIT_SEALER, AUDIT_TABLE, c.env.AUDIT_SEAL_DELAY_MS);
  forgetTenantKeys(order.tenant);
  return c.json({
    service: "payments",
    tenant: order.tenant,
    destroyed_at: order.at,
    key_destroyed: (overwrite?.meta.changes ?? 0) > 0,
    legacy_cards_overwritten: (numbers?.meta.changes ?? 0) + (holders?.meta.changes ?? 0),
    fingerprints_blanked: fingerprints?.meta.changes ?? 0,
    idempotent_answers_deleted: answers?.meta.changes ?? 0,
  });
});

export { app as internalRoutes };
