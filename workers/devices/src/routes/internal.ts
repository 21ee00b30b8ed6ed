import { Hono } from "hono";
import { nudgeFromRequest } from "../../../../shared/audit/sealer";
import { logger } from "../../../../shared/logger";
import { SHRED_PATH, shredOrder } from "../../../../shared/keys/shred";
import type { AppVariables } from "../../../../shared/http";
import { DEVICE_CHAIN } from "../audit";
import { sessionStub } from "../session/stub";

/** Devices erased at once (their objects called in parallel), and at most per call: each is one subrequest. */
export const ERASE_PAGE = 25;
export const ERASE_MAX_PER_CALL = 250;

const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();

interface Erased {
  id: string;
  readings: number;
  alarms: number;
}

/**
 * Offboarding of a tenant (called by auth when a platform admin offboards it; README "Offboarding"). devices
 * keeps no PHI in D1, but each device's Durable Object holds the vitals it received: every one of the
 * tenant's device objects deletes all it stored (DeviceSession.erase), then one D1 batch per page marks those
 * devices decommissioned and erased and appends one `device.erase` record per device to the chain, saying
 * what was erased. A device counts as erased only once its batch committed, so a call cut short resumes with
 * the devices not yet marked; each record is written once (the batch skips devices already marked), with the
 * counts of the device's first erasure (its object answers them again when erased twice). At most
 * ERASE_MAX_PER_CALL devices per call: `complete: false` asks the caller to call again.
 */
app.post(SHRED_PATH, async (c) => {
  const now = new Date();
  const order = await shredOrder(c.req, c.get("principal"), now);
  const actor = c.get("principal");
  const db = c.env.DB;
  let devices = 0;
  let readings = 0;
  let alarms = 0;
  for (;;) {
    const left = ERASE_MAX_PER_CALL - devices;
    if (left <= 0) break;
    const { results } = await db
      .prepare("SELECT id FROM devices WHERE tenant_id = ? AND erased_at IS NULL ORDER BY id LIMIT ?")
      .bind(order.tenant, Math.min(ERASE_PAGE, left))
      .all<{ id: string }>();
    if (results.length === 0) break;
    const page: Erased[] = await Promise.all(results.map(async ({ id }) => ({ id, ...(await sessionStub(c.env, order.tenant, id).erase()) })));
    const list = JSON.stringify(page.map((e) => ({ id: e.id, r: e.readings, a: e.alarms })));
    // The records first: they read each device's status before the UPDATE changes it, and only devices not yet marked.
    await db.batch([
      db
        .prepare(
          `INSERT INTO device_audit (device_id, tenant_id, time, action, actor_sub, actor_client_id, old_value, new_value, reason, request_id)
           SELECT d.id, d.tenant_id, ?1, 'device.erase', ?2, ?3, json_object('status', d.status),
                  json_object('status', 'decommissioned', 'session_data', 'erased', 'readings_erased', e.r, 'alarms_erased', e.a), ?4, ?5
           FROM devices d JOIN (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.r') AS r, json_extract(value, '$.a') AS a FROM json_each(?6)) e ON d.id = e.id
           WHERE d.tenant_id = ?7 AND d.erased_at IS NULL ORDER BY d.id`,
        )
        .bind(order.at, actor.sub, actor.clientId, order.reason, c.get("requestId"), list, order.tenant),
      db
        .prepare(
          `UPDATE devices SET status = 'decommissioned', decommissioned_at = COALESCE(decommissioned_at, ?1), erased_at = ?1
           WHERE tenant_id = ?2 AND erased_at IS NULL AND id IN (SELECT json_extract(value, '$.id') FROM json_each(?3))`,
        )
        .bind(order.at, order.tenant, list),
    ]);
    devices += page.length;
    for (const e of page) {
      readings += e.readings;
      alarms += e.alarms;
    }
  }
  if (devices > 0) nudgeFromRequest(c, c.env.AUDIT_SEALER, DEVICE_CHAIN.table, c.env.AUDIT_SEAL_DELAY_MS);
  const remaining =
    (await db.prepare("SELECT COUNT(*) AS n FROM devices WHERE tenant_id = ? AND erased_at IS NULL").bind(order.tenant).first<{ n: number }>())?.n ?? 0;
  logger.info("tenant_devices_erased", { request_id: c.get("requestId"), devices, remaining });
  return c.json({
    service: "devices",
    tenant: order.tenant,
    erased_at: order.at,
    devices_erased: devices,
    readings_erased: readings,
    alarms_erased: alarms,
    complete: remaining === 0,
  });
});

export { app as internalRoutes };
