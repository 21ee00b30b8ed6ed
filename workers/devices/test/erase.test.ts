import { env, runInDurableObject, SELF } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { ERASE_MAX_PER_CALL, ERASE_PAGE } from "../src/routes/internal";
import type { DeviceSession } from "../src/session/device-session";
import { sessionName } from "../src/session/stub";
import { BASE, call, DEVICE_CHAIN, deviceInput, openSocket, reading, sealAll, type Who } from "./helpers";

/**
 * Offboarding a tenant erases its device sessions (README "Offboarding"): every device object of the
 * tenant deletes what it stored, the devices are decommissioned and marked erased, and one record per
 * device says what went. Another tenant's devices are untouched; the route is internal (a platform
 * admin's principal only) and resumes where an earlier call stopped.
 */
const T = "ten_erasetenantone";
const OTHER = "ten_erasetenanttwo";
const RETRY = "ten_erasetenantretry";
const admin: Who = { sub: "cli_platform", scopes: ["admin"], tenantId: PLATFORM_TENANT_ID };
const writer = (tenantId: string): Who => ({ sub: `cli_w_${tenantId}`, tenantId, scopes: ["device:write", "device:read", "audit:read"] });
const asDeviceOf = (tenantId: string, deviceId: string): Who => ({ sub: `cli_${deviceId}`, tenantId, roles: ["device"], scopes: ["device:connect"], deviceId });

async function shred(tenant: string, who: Who = admin, body: unknown = { reason: "Contract ended" }): Promise<Response> {
  return SELF.fetch(`${BASE}/internal/tenants/${tenant}/shred`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, who)) },
    body: JSON.stringify(body),
  });
}

async function registerIn(tenantId: string): Promise<string> {
  const res = await call(writer(tenantId), "/v1/devices", { method: "POST", body: deviceInput() });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  return (await res.json<{ id: string }>()).id;
}

/** Row counts of the object's own tables, read inside the object. */
function stored(tenantId: string, id: string): Promise<Record<string, number>> {
  const stub = env.SESSIONS.get(env.SESSIONS.idFromName(sessionName(tenantId, id)));
  return runInDurableObject(stub, (_i: DeviceSession, state) => {
    const count = (t: string) => state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${t}`).one().n;
    return { readings: count("readings"), alarms: count("alarms"), presence: count("presence"), meta: count("meta") };
  });
}

function metaOf(tenantId: string, id: string): Promise<Record<string, string>> {
  const stub = env.SESSIONS.get(env.SESSIONS.idFromName(sessionName(tenantId, id)));
  return runInDurableObject(stub, (_i: DeviceSession, state) =>
    Object.fromEntries(state.storage.sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta").toArray().map((r) => [r.key, r.value])),
  );
}

async function erasures(tenantId: string): Promise<{ device_id: string; old_value: string; new_value: string; reason: string }[]> {
  const { results } = await env.DB.prepare("SELECT device_id, old_value, new_value, reason FROM device_audit WHERE tenant_id = ? AND action = 'device.erase' ORDER BY device_id")
    .bind(tenantId)
    .all<{ device_id: string; old_value: string; new_value: string; reason: string }>();
  return results;
}

describe("erasing a tenant's device sessions (offboarding)", () => {
  beforeAll(async () => {
    for (const [id, shard] of [
      [T, 1],
      [OTHER, 2],
      [RETRY, 1],
    ] as const) {
      await env.AUTH_DB.prepare("INSERT OR IGNORE INTO tenants (id, name, name_key, shard, created_at, created_by) VALUES (?, ?, ?, ?, ?, 'test')")
        .bind(id, id, id, shard, new Date().toISOString())
        .run();
    }
  });

  it("is internal: no principal 401, a tenant's admin or a platform client without admin 403, a tenant that cannot be offboarded 400; nothing changes", async () => {
    const id = await registerIn(T);
    const noPrincipal = await SELF.fetch(`${BASE}/internal/tenants/${T}/shred`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ reason: "x" }) });
    expect(noPrincipal.status).toBe(401);
    expect((await shred(T, { ...admin, tenantId: T })).status).toBe(403);
    expect((await shred(T, { ...admin, scopes: ["device:write"] })).status).toBe(403);
    expect((await shred("ten_default")).status).toBe(400);
    expect((await shred("not-a-tenant")).status).toBe(400);
    expect((await shred(T, admin, { reason: "" })).status).toBe(400);
    expect((await shred(T, admin, { reason: "x", more: 1 })).status).toBe(400);
    const row = await env.DB.prepare("SELECT status, erased_at FROM devices WHERE id = ?").bind(id).first();
    expect(row).toEqual({ status: "active", erased_at: null });
    expect(await erasures(T)).toEqual([]);
  });

  it("deletes every reading, alarm and presence change of the tenant's devices, closes their sockets, records one erasure per device, and leaves another tenant's devices as they were", async () => {
    const ids = [await registerIn(T), await registerIn(T)];
    const [a, b] = ids as [string, string];
    const keep = await registerIn(OTHER);
    // a: readings, one of them under a threshold (an alarm); b: readings over its socket, with a viewer watching.
    const limits = { limits: { "150456": { low: 90 } }, reason: "ward default" };
    expect((await call(writer(T), `/v1/devices/${a}/thresholds`, { method: "PUT", body: limits, headers: { "if-match": '"0"' } })).status).toBe(200);
    const posted = await call(asDeviceOf(T, a), `/v1/devices/${a}/readings`, { method: "POST", body: { readings: [reading(1), reading(2, { value: 80 }), reading(3)] } });
    expect(await posted.json()).toMatchObject({ stored: 3, alarms: 1 });
    expect((await call(asDeviceOf(OTHER, keep), `/v1/devices/${keep}/readings`, { method: "POST", body: { readings: [reading(1), reading(2)] } })).status).toBe(200);
    const device = await connectDeviceOf(T, b);
    device.ws.send(JSON.stringify(reading(7)));
    await device.inbox.until(() => device.inbox.messages.some((m) => (m as { ack?: number }).ack === 7));
    const viewer = await connectViewerOf(T, b);
    expect(await stored(T, a)).toMatchObject({ readings: 3, alarms: 1 });
    expect((await stored(T, b)).readings).toBe(1);
    const otherBefore = await stored(OTHER, keep);
    const tenantDevices = (await env.DB.prepare("SELECT COUNT(*) AS n FROM devices WHERE tenant_id = ?").bind(T).first<{ n: number }>())?.n ?? 0;
    expect(tenantDevices).toBeGreaterThanOrEqual(2);

    const res = await shred(T);
    expect(res.status).toBe(200);
    const out = await res.json<Record<string, unknown>>();
    // Every device of the tenant (the first test's, with no readings, too).
    expect(out).toMatchObject({ service: "devices", tenant: T, devices_erased: tenantDevices, readings_erased: 4, alarms_erased: 1, complete: true });

    // Inside the objects: nothing of the tenant's vitals; only the mark that refuses anything later, and what went.
    for (const [id, erased] of [
      [a, { readings: 3, alarms: 1 }],
      [b, { readings: 1, alarms: 0 }],
    ] as const) {
      expect(await stored(T, id)).toEqual({ readings: 0, alarms: 0, presence: 0, meta: 2 });
      expect(await metaOf(T, id)).toEqual({ decommissioned: "1", erased: JSON.stringify(erased) });
    }
    await device.inbox.until(() => device.inbox.closed !== undefined);
    expect(device.inbox.closed?.code).toBe(4010);
    await viewer.inbox.until(() => viewer.inbox.closed !== undefined);
    expect(viewer.inbox.closed?.code).toBe(4010);
    // Through the API: no readings, no alarms; the device is decommissioned and refuses readings.
    expect((await (await call(writer(T), `/v1/devices/${a}/readings`)).json<{ data: unknown[] }>()).data).toEqual([]);
    expect((await (await call(writer(T), `/v1/devices/${a}/alarms`)).json<{ data: unknown[] }>()).data).toEqual([]);
    expect((await (await call(writer(T), `/v1/devices/${a}`)).json<{ status: string }>()).status).toBe("decommissioned");
    expect((await call(asDeviceOf(T, a), `/v1/devices/${a}/readings`, { method: "POST", body: { readings: [reading(9)] } })).status).toBe(410);
    // The registry rows: decommissioned and erased; the API's view does not show the erasure column.
    const rows = await env.DB.prepare("SELECT status, decommissioned_at, erased_at FROM devices WHERE tenant_id = ?").bind(T).all<{ status: string; erased_at: string | null }>();
    expect(rows.results).toHaveLength(tenantDevices);
    expect(rows.results.every((r) => r.status === "decommissioned" && r.erased_at === out.erased_at)).toBe(true);
    expect(Object.keys(await (await call(writer(T), `/v1/devices/${a}`)).json<object>())).not.toContain("erased_at");

    // One record per device, what it was and what went; the chain seals and verifies.
    const records = await erasures(T);
    expect(records.map((r) => r.device_id).sort()).toEqual((await env.DB.prepare("SELECT id FROM devices WHERE tenant_id = ? ORDER BY id").bind(T).all<{ id: string }>()).results.map((r) => r.id));
    const ofA = records.find((r) => r.device_id === a);
    expect(JSON.parse(ofA?.old_value ?? "")).toEqual({ status: "active" });
    expect(JSON.parse(ofA?.new_value ?? "")).toEqual({ status: "decommissioned", session_data: "erased", readings_erased: 3, alarms_erased: 1 });
    expect(ofA?.reason).toBe("Contract ended");
    await sealAll();
    expect(await verifyChain(env.DB, DEVICE_CHAIN)).toMatchObject({ ok: true });

    // The other tenant's device is as it was.
    expect(await stored(OTHER, keep)).toEqual(otherBefore);
    expect((await env.DB.prepare("SELECT status, erased_at FROM devices WHERE id = ?").bind(keep).first())).toEqual({ status: "active", erased_at: null });

    // Again: nothing more to erase, no second record.
    const again = await shred(T);
    expect(await again.json()).toMatchObject({ devices_erased: 0, readings_erased: 0, complete: true });
    expect(await erasures(T)).toHaveLength(tenantDevices);
  });

  it("records the true counts when the objects erased but the batch recording them did not commit (the retry's erase answers the first erasure's counts)", async () => {
    const id = await registerIn(RETRY);
    const limits = { limits: { "150456": { low: 90 } }, reason: "ward default" };
    expect((await call(writer(RETRY), `/v1/devices/${id}/thresholds`, { method: "PUT", body: limits, headers: { "if-match": '"0"' } })).status).toBe(200);
    const readings = [reading(1), reading(2, { value: 80 }), reading(3), reading(4, { value: 85 }), reading(5)];
    expect((await call(asDeviceOf(RETRY, id), `/v1/devices/${id}/readings`, { method: "POST", body: { readings } })).status).toBe(200);
    // What a call cut short after the objects erased leaves: the object erased, no D1 batch (no record, the device not marked).
    const session = env.SESSIONS.get(env.SESSIONS.idFromName(sessionName(RETRY, id)));
    expect(await session.erase()).toEqual({ readings: 5, alarms: 2 });
    expect(await stored(RETRY, id)).toMatchObject({ readings: 0, alarms: 0, presence: 0 });
    expect(await erasures(RETRY)).toEqual([]);
    // Erasing again erases nothing more and answers the same counts.
    expect(await session.erase()).toEqual({ readings: 5, alarms: 2 });

    const res = await shred(RETRY);
    expect(await res.json()).toMatchObject({ devices_erased: 1, readings_erased: 5, alarms_erased: 2, complete: true });
    const records = await erasures(RETRY);
    expect(records).toHaveLength(1);
    expect(JSON.parse(records[0]?.new_value ?? "")).toEqual({ status: "decommissioned", session_data: "erased", readings_erased: 5, alarms_erased: 2 });
    expect(await shred(RETRY).then((r) => r.json())).toMatchObject({ devices_erased: 0, complete: true });
    expect(await erasures(RETRY)).toHaveLength(1);
  });

  it("keeps only the mark and the counts when a device connects or its limits change between the object's erasure and the batch marking it", async () => {
    const tenant = RETRY;
    const id = await registerIn(tenant);
    const put = (ifMatch: string) =>
      call(writer(tenant), `/v1/devices/${id}/thresholds`, { method: "PUT", body: { limits: { "150456": { low: 91 } }, reason: "ward default" }, headers: { "if-match": ifMatch } });
    expect((await put('"0"')).status).toBe(200);
    // The object erased, the registry not yet marked (the page's batch has not committed): the worker's checks still pass.
    const session = env.SESSIONS.get(env.SESSIONS.idFromName(sessionName(tenant, id)));
    expect(await session.erase()).toEqual({ readings: 0, alarms: 0 });
    const mark = { decommissioned: "1", erased: JSON.stringify({ readings: 0, alarms: 0 }) };
    expect(await metaOf(tenant, id)).toEqual(mark);
    // A device connecting now is refused by the object, and brings none of its limits back into it.
    expect((await openSocket(asDeviceOf(tenant, id), `/v1/devices/${id}/session`)).res.status).toBe(410);
    expect(await metaOf(tenant, id)).toEqual(mark);
    // Nor does a change of the limits pushed to it (the change itself is saved and audited in D1).
    expect((await put('"1"')).status).toBe(200);
    expect(await metaOf(tenant, id)).toEqual(mark);
  });

  it(`works in pages of ${ERASE_PAGE} and at most ${ERASE_MAX_PER_CALL} devices a call: complete is false until the last, and the next call resumes`, async () => {
    const tenant = "ten_erasetenantmany";
    const total = ERASE_MAX_PER_CALL + 7;
    const now = new Date().toISOString();
    // Registry rows alone (their objects start empty): what is paged here is the registry walk.
    const ids = Array.from({ length: total }, (_, i) => `dev_erase${String(i).padStart(12, "0")}`);
    await env.DB.batch(
      ids.map((id) =>
        env.DB.prepare(
          "INSERT INTO devices (id, tenant_id, udi, model, manufacturer, serial, type, status, client_id, created_at, created_by) VALUES (?, ?, ?, 'M', 'Acme', ?, 'pulse_oximeter', 'active', ?, ?, 'test')",
        ).bind(id, tenant, `udi-${id}`, `sn-${id}`, `cli_${id}`, now),
      ),
    );
    const first = await (await shred(tenant)).json<{ devices_erased: number; complete: boolean }>();
    expect(first).toMatchObject({ devices_erased: ERASE_MAX_PER_CALL, complete: false });
    const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM devices WHERE tenant_id = ? AND erased_at IS NULL").bind(tenant).first<{ n: number }>();
    expect(left?.n).toBe(7);
    const second = await (await shred(tenant)).json<{ devices_erased: number; complete: boolean }>();
    expect(second).toMatchObject({ devices_erased: 7, complete: true });
    expect(await erasures(tenant)).toHaveLength(total);
    expect(await metaOf(tenant, ids.at(-1) ?? "")).toEqual({ decommissioned: "1", erased: JSON.stringify({ readings: 0, alarms: 0 }) });
  });
});

async function connectDeviceOf(tenantId: string, id: string) {
  return openAs(asDeviceOf(tenantId, id), `/v1/devices/${id}/session`);
}

async function connectViewerOf(tenantId: string, id: string) {
  return openAs({ sub: "cli_viewer", tenantId, roles: ["clinician"], scopes: ["device:read"] }, `/v1/devices/${id}/live`);
}

async function openAs(who: Who, path: string) {
  const { res, ws, inbox } = await openSocket(who, path);
  if (!ws || !inbox) throw new Error(`socket refused: ${res.status} ${await res.text()}`);
  return { ws, inbox };
}
