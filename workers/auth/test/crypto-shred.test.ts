import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { decryptField, fromBase64Url, parseKeyring, type Keyring } from "../../../shared/crypto";
import { PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { signPrincipal, PRINCIPAL_HEADER, type Principal } from "../../../shared/principal";
import { clientToken, expectErrorBody, FHIR, gw, JSON_CT, token, type CreatedClient } from "./helpers";

/**
 * Offboarding crypto-shreds the tenant (README "Offboarding"): through the real gateway, phi and payments
 * workers and their D1 databases. The raw scan plays an attacker holding a copy of every database AND the
 * platform keyrings: before offboarding it decrypts the tenant's records (the scan works), after it
 * decrypts nothing, while the audit trail of the offboarding stays.
 */

interface Tenant {
  id: string;
  shard: number;
  status: string;
  data_keys_destroyed_at: string | null;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const rings: { phi?: Keyring; payments?: Keyring } = {};
let platform: string;

function phiShard(shard: number): D1Database {
  const db: unknown = Reflect.get(env, shard === 0 ? "PHI_DB" : `PHI_DB_${shard}`);
  if (!db) throw new Error(`no PHI shard ${shard} in the test env`);
  return db as D1Database;
}
const phiShards = () => [0, 1, 2, 3].map(phiShard);

/** Every data key any database still holds for the tenant, unwrapped with the platform keyring (as an attacker with both would). */
async function keysFound(dbs: D1Database[], service: string, tenant: string, platformRing: Keyring): Promise<CryptoKey[]> {
  const out: CryptoKey[] = [...platformRing.keys.values()];
  for (const db of dbs) {
    const row = await db.prepare("SELECT kid, wrapped FROM tenant_keys WHERE tenant_id = ?").bind(tenant).first<{ kid: string; wrapped: string | null }>();
    if (!row?.wrapped) continue;
    const raw = fromBase64Url(await decryptField(platformRing, row.wrapped, `tenant_keys/${service}/${tenant}/${row.kid}`));
    out.push(await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]));
  }
  return out;
}

/** How many of `sealed` (with their associated data) any of `keys` opens, whatever key id each names. */
async function decryptable(sealed: { value: string; aad: string }[], keys: CryptoKey[]): Promise<number> {
  let opened = 0;
  for (const s of sealed) {
    const kid = s.value.split(".")[1] ?? "";
    for (const key of keys) {
      const ok = await decryptField({ currentKid: kid, keys: new Map([[kid, key]]) }, s.value, s.aad).then(
        () => true,
        () => false,
      );
      if (ok) {
        opened++;
        break;
      }
    }
  }
  return opened;
}

async function phiSealed(db: D1Database, tenant: string) {
  const { results } = await db
    .prepare("SELECT resource_type, id, version_id, sealed FROM resource_versions WHERE tenant_id = ? AND sealed IS NOT NULL")
    .bind(tenant)
    .all<{ resource_type: string; id: string; version_id: number; sealed: string }>();
  return results.map((r) => ({ value: r.sealed, aad: `phi/${r.resource_type}/${r.id}/${r.version_id}` }));
}

async function cardsSealed(tenant: string) {
  const { results } = await env.PAYMENTS_DB.prepare("SELECT id, number_enc FROM payment_methods WHERE tenant_id = ?").bind(tenant).all<{ id: string; number_enc: string }>();
  return results.map((r) => ({ value: r.number_enc, aad: `payment_methods.number_enc:${r.id}` }));
}

async function seed(tenant: Tenant): Promise<{ patients: string[]; clinician: string; billing: string; device: string }> {
  const make = async (roles: string[], scopes: string[] = []): Promise<CreatedClient> => {
    const res = await gw("/admin/clients", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: "shred", roles, scopes, tenant_id: tenant.id }) });
    expect(res.status).toBe(201);
    return res.json<CreatedClient>();
  };
  const clinician = await clientToken(await make(["clinician"]), "phi:read phi:write");
  const billing = await clientToken(await make(["billing"]), "payment:read payment:write");
  const patients: string[] = [];
  for (const family of ["Shredded", "Forgotten"]) {
    const res = await gw("/v1/phi/Patient", { method: "POST", headers: { ...bearer(clinician), ...FHIR }, body: JSON.stringify({ resourceType: "Patient", name: [{ family }], birthDate: "1970-01-02" }) });
    expect(res.status).toBe(201);
    const { id } = await res.json<{ id: string }>();
    patients.push(id);
    const upd = await gw(`/v1/phi/Patient/${id}`, { method: "PUT", headers: { ...bearer(clinician), ...FHIR }, body: JSON.stringify({ resourceType: "Patient", id, name: [{ family }], gender: "other" }) });
    expect(upd.status).toBe(200);
  }
  const pay = await gw("/v1/payments", {
    method: "POST",
    headers: { ...bearer(billing), ...JSON_CT, "idempotency-key": crypto.randomUUID() },
    body: JSON.stringify({ amount: 500, currency: "usd", card: { number: "4242424242424242", exp_month: 12, exp_year: new Date().getUTCFullYear() + 2, cvc: "123" } }),
  });
  expect(pay.status).toBe(201);
  // A bedside monitor of the tenant, with two readings in its session object.
  const registrar = await clientToken(await make([], ["device:write"]));
  const reg = await gw("/v1/devices", {
    method: "POST",
    headers: { ...bearer(registrar), ...JSON_CT },
    body: JSON.stringify({ udi: `(01)0000shred${crypto.randomUUID().slice(0, 8)}`, model: "M1", manufacturer: "Acme", serial: `SN-${crypto.randomUUID()}`, type: "pulse_oximeter" }),
  });
  expect(reg.status).toBe(201);
  const dev = await reg.json<{ id: string; credentials: { client_id: string; client_secret: string } }>();
  const readings = [1, 2].map((seq) => ({ seq, code: "150456", value: 97, unit: "%", device_time: new Date(Date.UTC(2026, 10, 25, 12, 0, seq)).toISOString() }));
  const sent = await gw(`/v1/devices/${dev.id}/readings`, { method: "POST", headers: { ...bearer(await clientToken(dev.credentials)), ...JSON_CT }, body: JSON.stringify({ readings }) });
  expect(sent.status).toBe(200);
  return { patients, clinician, billing, device: dev.id };
}

/** The readings the tenant's device object holds, asked of the devices worker itself with a principal of the tenant. */
async function deviceReadings(tenant: string, device: string): Promise<number> {
  const principal: Principal = {
    sub: "shred-check",
    clientId: "shred-check",
    roles: [],
    scopes: ["device:read"],
    tokenId: "t",
    tenantId: tenant,
    shard: 0,
    ip: "127.0.0.1",
    iat: Math.floor(Date.now() / 1000),
  };
  const res = await env.DEVICES.fetch(`https://devices.internal/v1/devices/${device}/readings`, { headers: { [PRINCIPAL_HEADER]: await signPrincipal(env.GATEWAY_HMAC_KEY, principal) } });
  expect(res.status).toBe(200);
  return (await res.json<{ data: unknown[] }>()).data.length;
}

async function auditCount(db: D1Database, table: string, tenant: string): Promise<number> {
  return (await db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(tenant).first<{ n: number }>())?.n ?? 0;
}

describe("offboarding crypto-shreds the tenant's data", () => {
  beforeAll(async () => {
    platform = await token("admin");
    const keyrings = JSON.parse(env.PLATFORM_KEYRINGS) as { phi: string; payments: string };
    rings.phi = await parseKeyring(keyrings.phi);
    rings.payments = await parseKeyring(keyrings.payments);
  });

  it("destroys the data keys in phi (every shard) and payments and erases the device sessions: a raw scan with the platform keyrings decrypts nothing after, no reading is left, and the audit trails stay", async () => {
    const phiRing = rings.phi;
    const cardRing = rings.payments;
    if (!phiRing || !cardRing) throw new Error("keyrings not loaded");
    const created = await gw("/admin/tenants", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: `Shredded Clinic ${crypto.randomUUID().slice(0, 8)}` }) });
    const tenant = await created.json<Tenant>();
    const { patients, clinician, device } = await seed(tenant);
    const db = phiShard(tenant.shard);

    // Before: sealed under the tenant's own data key (never a platform key directly), and the scan opens all of it.
    const bodies = await phiSealed(db, tenant.id);
    expect(bodies).toHaveLength(4);
    expect(bodies.every((b) => b.value.startsWith("v1.tk_"))).toBe(true);
    expect(await decryptable(bodies, [...phiRing.keys.values()])).toBe(0);
    expect(await decryptable(bodies, await keysFound(phiShards(), "phi", tenant.id, phiRing))).toBe(4);
    const cards = await cardsSealed(tenant.id);
    expect(cards).toHaveLength(1);
    expect(await decryptable(cards, await keysFound([env.PAYMENTS_DB], "payments", tenant.id, cardRing))).toBe(1);
    const indexRows = async () => (await db.prepare("SELECT COUNT(*) AS n FROM search_index WHERE tenant_id = ?").bind(tenant.id).first<{ n: number }>())?.n ?? 0;
    expect(await indexRows()).toBeGreaterThan(0);
    const phiAuditBefore = await auditCount(db, "phi_audit", tenant.id);
    const payAuditBefore = await auditCount(env.PAYMENTS_DB, "audit_events", tenant.id);
    expect(phiAuditBefore).toBeGreaterThanOrEqual(4);
    expect(await deviceReadings(tenant.id, device)).toBe(2);

    const res = await gw(`/admin/tenants/${tenant.id}`, { method: "DELETE", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "Contract ended; data to be destroyed" }) });
    expect(res.status).toBe(200);
    const out = await res.json<{ tenant: Tenant; data_keys_destroyed: boolean; data_services: string[] }>();
    expect(out.data_keys_destroyed).toBe(true);
    expect(out.data_services.sort()).toEqual(["devices", "payments", "phi"]);
    expect(Date.parse(out.tenant.data_keys_destroyed_at ?? "")).not.toBeNaN();
    const stored = await env.DB.prepare("SELECT data_keys_destroyed_at, data_erased_services FROM tenants WHERE id = ?")
      .bind(tenant.id)
      .first<{ data_keys_destroyed_at: string | null; data_erased_services: string | null }>();
    expect(stored?.data_keys_destroyed_at).toBe(out.tenant.data_keys_destroyed_at);
    expect(stored?.data_erased_services?.split(",").sort()).toEqual(["devices", "payments", "phi"]);

    // After: the rows are still there, but nothing in any database opens them, even with the platform keyrings.
    expect(await phiSealed(db, tenant.id)).toHaveLength(4);
    expect(await decryptable(await phiSealed(db, tenant.id), await keysFound(phiShards(), "phi", tenant.id, phiRing))).toBe(0);
    expect(await decryptable(await cardsSealed(tenant.id), await keysFound([env.PAYMENTS_DB], "payments", tenant.id, cardRing))).toBe(0);
    for (const shardDb of phiShards()) {
      const key = await shardDb.prepare("SELECT wrapped, destroyed_at, destroyed_by FROM tenant_keys WHERE tenant_id = ?").bind(tenant.id).first();
      expect(key).toMatchObject({ wrapped: null, destroyed_by: env.BOOTSTRAP_CLIENT_ID });
    }
    // The blind indexes are gone too, and the keyed card fingerprints.
    expect(await indexRows()).toBe(0);
    const fp = await env.PAYMENTS_DB.prepare("SELECT fingerprint FROM payment_methods WHERE tenant_id = ?").bind(tenant.id).first<{ fingerprint: string }>();
    expect(fp?.fingerprint).toBe("");

    // The audit trails keep every earlier record and gain the destruction's.
    expect(await auditCount(db, "phi_audit", tenant.id)).toBe(phiAuditBefore + 1);
    const shredRecord = await db.prepare("SELECT actor_sub, action, resource_id FROM phi_audit WHERE tenant_id = ? AND action = 'tenant-shred'").bind(tenant.id).first();
    expect(shredRecord).toEqual({ actor_sub: env.BOOTSTRAP_CLIENT_ID, action: "tenant-shred", resource_id: tenant.id });
    expect(await auditCount(env.PAYMENTS_DB, "audit_events", tenant.id)).toBe(payAuditBefore + 1);
    // devices: the session object holds no reading any more; the device is decommissioned, marked erased, and its record says what went.
    expect(await deviceReadings(tenant.id, device)).toBe(0);
    const devRow = await env.DEVICES_DB.prepare("SELECT status, erased_at FROM devices WHERE id = ?").bind(device).first<{ status: string; erased_at: string | null }>();
    expect(devRow?.status).toBe("decommissioned");
    expect(Date.parse(devRow?.erased_at ?? "")).not.toBeNaN();
    const erasure = await env.DEVICES_DB.prepare("SELECT actor_sub, new_value FROM device_audit WHERE tenant_id = ? AND device_id = ? AND action = 'device.erase'")
      .bind(tenant.id, device)
      .all<{ actor_sub: string; new_value: string }>();
    expect(erasure.results).toHaveLength(1);
    expect(erasure.results[0]?.actor_sub).toBe(env.BOOTSTRAP_CLIENT_ID);
    expect(JSON.parse(erasure.results[0]?.new_value ?? "{}")).toEqual({ status: "decommissioned", session_data: "erased", readings_erased: 2, alarms_erased: 0 });
    // No API returns the data: the tenant's token is refused at the gateway.
    expect((await gw(`/v1/phi/Patient/${patients[0] ?? ""}`, { headers: bearer(clinician) })).status).toBe(401);
    // Done once: a second DELETE changes nothing.
    const again = await gw(`/admin/tenants/${tenant.id}`, { method: "DELETE", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "again" }) });
    expect(again.status).toBe(409);
    expect((await expectErrorBody(again, `/admin/tenants/${tenant.id}`)).code).toBe("tenant_offboarded");
  });

  it("a tenant erased before devices joined offboarding: migration 0007 marks its erasure as phi's and payments', and a further DELETE erases its device sessions, then answers 409", async () => {
    const created = await gw("/admin/tenants", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: `Early Clinic ${crypto.randomUUID().slice(0, 8)}` }) });
    const tenant = await created.json<Tenant>();
    const { device } = await seed(tenant);
    expect(await deviceReadings(tenant.id, device)).toBe(2);
    // The tenant as an earlier version left it: offboarded, its clients disabled, phi and payments confirmed, devices
    // never called; then the migration's backfill (its last statement) ran over the tenants table.
    const erasedAt = "2026-11-30T12:00:00.000Z";
    await env.DB.batch([
      env.DB.prepare("UPDATE tenants SET offboarded_at = ?1, offboarded_by = 'admin', offboard_reason = 'early', data_keys_destroyed_at = ?1, data_erased_services = NULL WHERE id = ?2").bind(erasedAt, tenant.id),
      env.DB.prepare("UPDATE clients SET disabled = 1, disabled_at = ?1 WHERE tenant_id = ?2").bind(erasedAt, tenant.id),
    ]);
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0007"));
    const backfill = migration?.queries.find((q) => q.includes("UPDATE `tenants` SET `data_erased_services`"));
    if (!backfill) throw new Error("migration 0007 has no backfill statement");
    await env.DB.prepare(backfill).run();
    const marked = async () => env.DB.prepare("SELECT data_keys_destroyed_at, data_erased_services FROM tenants WHERE id = ?").bind(tenant.id).first<{ data_keys_destroyed_at: string; data_erased_services: string | null }>();
    expect(await marked()).toEqual({ data_keys_destroyed_at: erasedAt, data_erased_services: "phi,payments" });

    const res = await gw(`/admin/tenants/${tenant.id}`, { method: "DELETE", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "Erase the device sessions too" }) });
    expect(res.status).toBe(200);
    const out = await res.json<{ tenant: Tenant; data_keys_destroyed: boolean; data_services: string[]; clients_disabled: number }>();
    expect(out.data_services.sort()).toEqual(["devices", "payments", "phi"]);
    expect(out.clients_disabled).toBe(0);
    // The first erasure's time stays; the services are now all three.
    expect(out.tenant.data_keys_destroyed_at).toBe(erasedAt);
    expect(await marked()).toEqual({ data_keys_destroyed_at: erasedAt, data_erased_services: "phi,payments,devices" });
    expect(await deviceReadings(tenant.id, device)).toBe(0);
    const again = await gw(`/admin/tenants/${tenant.id}`, { method: "DELETE", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "again" }) });
    expect(again.status).toBe(409);
    expect((await expectErrorBody(again, `/admin/tenants/${tenant.id}`)).code).toBe("tenant_offboarded");
  });

  it("the shred route is internal: the gateway does not route it, and a worker refuses any principal but a platform admin's", async () => {
    const path = "/internal/tenants/ten_abcdefghijklmnop/shred";
    const viaGateway = await gw(path, { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "x" }) });
    expect(viaGateway.status).toBe(404);
    const principal = (over: Partial<Principal>): Principal => ({
      sub: "someone",
      clientId: "someone",
      roles: ["admin"],
      scopes: ["admin"],
      tokenId: "t",
      tenantId: PLATFORM_TENANT_ID,
      shard: 0,
      ip: "127.0.0.1",
      iat: Math.floor(Date.now() / 1000),
      ...over,
    });
    for (const [binding, name] of [
      [env.PHI, "phi"],
      [env.PAYMENTS, "payments"],
      [env.DEVICES, "devices"],
    ] as const) {
      const call = async (headers: Record<string, string>, body: unknown = { reason: "test" }, p = path) =>
        binding.fetch(new Request(`https://${name}.internal${p}`, { method: "POST", headers: { ...JSON_CT, ...headers }, body: JSON.stringify(body) }));
      expect((await call({})).status).toBe(401);
      const tenantAdmin = await signPrincipal(env.GATEWAY_HMAC_KEY, principal({ tenantId: "ten_abcdefghijklmnop" }));
      expect((await call({ [PRINCIPAL_HEADER]: tenantAdmin })).status).toBe(403);
      const noAdmin = await signPrincipal(env.GATEWAY_HMAC_KEY, principal({ scopes: ["phi:read"] }));
      expect((await call({ [PRINCIPAL_HEADER]: noAdmin })).status).toBe(403);
      const ok = await signPrincipal(env.GATEWAY_HMAC_KEY, principal({}));
      expect((await call({ [PRINCIPAL_HEADER]: ok }, { reason: "" })).status).toBe(400);
      expect((await call({ [PRINCIPAL_HEADER]: ok }, { reason: "x", extra: 1 })).status).toBe(400);
      expect((await call({ [PRINCIPAL_HEADER]: ok }, { reason: "x" }, "/internal/tenants/ten_default/shred")).status).toBe(400);
      expect((await call({ [PRINCIPAL_HEADER]: ok }, { reason: "x" }, "/internal/tenants/not-a-tenant/shred")).status).toBe(400);
    }
  });
});
