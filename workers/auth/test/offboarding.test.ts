import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { TenantStore } from "../src/tenants";
import { basic, clientToken, expectErrorBody, FORM, form, gw, JSON_CT, randomIp, token, withBearer, type CreatedClient } from "./helpers";

interface Tenant {
  id: string;
  name: string;
  shard: number;
  status: string;
  offboarded_at: string | null;
  offboarded_by: string | null;
  offboard_reason: string | null;
}
interface Outcome {
  tenant: Tenant;
  clients_disabled: number;
  tokens_refused_within_ms: number;
  data_keys_destroyed: boolean;
  data_services: string[];
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
let platform: string;

async function tenant(name: string): Promise<Tenant> {
  const res = await gw("/admin/tenants", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name }) });
  expect(res.status).toBe(201);
  return res.json<Tenant>();
}

async function client(tenant_id: string, roles: string[]): Promise<CreatedClient> {
  const res = await gw("/admin/clients", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: "c", roles, tenant_id }) });
  expect(res.status).toBe(201);
  return res.json<CreatedClient>();
}

function offboard(id: string, body: unknown, tok = platform, headers: Record<string, string> = JSON_CT): Promise<Response> {
  return gw(`/admin/tenants/${id}`, { method: "DELETE", headers: { ...bearer(tok), ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

/** A token request answered 200 or not, for a client's own secret. */
async function tokenStatus(c: CreatedClient): Promise<number> {
  const res = await gw("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() },
    body: form({ grant_type: "client_credentials" }),
  });
  return res.status;
}

describe("offboarding a tenant (DELETE /admin/tenants/{id})", () => {
  beforeAll(async () => {
    platform = await token("admin");
  });

  it("marks the tenant, disables every client of it, refuses their tokens and new ones, and records a security event", async () => {
    const gone = await tenant("Leaving Hospital");
    const stays = await tenant("Staying Hospital");
    const adminGone = await client(gone.id, ["admin"]);
    const clinGone = await client(gone.id, ["clinician"]);
    const clinStays = await client(stays.id, ["clinician"]);
    const tokGone = await clientToken(clinGone, "phi:read");
    const tokStays = await clientToken(clinStays, "phi:read");
    // Before: both tokens pass the gateway (the worker answers; a 401 would be the gateway's refusal).
    expect((await withBearer(tokGone)).status).not.toBe(401);
    expect((await withBearer(tokStays)).status).not.toBe(401);

    const res = await offboard(gone.id, { reason: "Contract ended 2026-11-30; data retention period over" });
    expect(res.status).toBe(200);
    const out = await res.json<Outcome>();
    expect(out.tenant).toMatchObject({ id: gone.id, status: "offboarded", offboarded_by: env.BOOTSTRAP_CLIENT_ID, offboard_reason: "Contract ended 2026-11-30; data retention period over" });
    expect(Date.parse(out.tenant.offboarded_at ?? "")).not.toBeNaN();
    expect(out.clients_disabled).toBe(2);
    expect(out.tokens_refused_within_ms).toBe(5000);
    // Its data keys are destroyed in phi and payments (test/crypto-shred.test.ts shows what that does to the data).
    expect(out.data_keys_destroyed).toBe(true);

    // Every client of it is disabled, in D1.
    const rows = await env.DB.prepare("SELECT id, disabled FROM clients WHERE tenant_id = ?").bind(gone.id).all<{ id: string; disabled: number }>();
    expect(rows.results.map((r) => r.id).sort()).toEqual([adminGone.client_id, clinGone.client_id].sort());
    expect(rows.results.every((r) => r.disabled === 1)).toBe(true);
    // Outstanding tokens are refused (at once in this isolate), new tokens are refused, introspection says inactive.
    expect((await withBearer(tokGone)).status).toBe(401);
    expect(await tokenStatus(clinGone)).toBe(401);
    expect(await tokenStatus(adminGone)).toBe(401);
    const intro = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: basic(env.BOOTSTRAP_CLIENT_ID, env.BOOTSTRAP_CLIENT_SECRET), "cf-connecting-ip": randomIp() }, body: form({ token: tokGone }) });
    expect(await intro.json()).toEqual({ active: false });
    // The other tenant is untouched.
    expect((await withBearer(tokStays)).status).not.toBe(401);
    expect(await tokenStatus(clinStays)).toBe(200);

    // The tenant stays listed, with its status; no new client can join it.
    const read = await gw(`/admin/tenants/${gone.id}`, { headers: bearer(platform) });
    expect(await read.json()).toMatchObject({ id: gone.id, status: "offboarded" });
    const join = await gw("/admin/clients", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: "late", roles: ["clinician"], tenant_id: gone.id }) });
    expect(join.status).toBe(409);
    expect((await expectErrorBody(join, "/admin/clients")).code).toBe("tenant_offboarded");
    // A second offboarding changes nothing.
    const again = await offboard(gone.id, { reason: "again" });
    expect(again.status).toBe(409);
    expect((await expectErrorBody(again, `/admin/tenants/${gone.id}`)).code).toBe("tenant_offboarded");

    // The security event names the tenant and who did it (never the reason text, which is operator input).
    let ev: { client_id: string; reason: string; severity: string } | null = null;
    for (let i = 0; i < 100 && !ev; i++) {
      ev = await env.DB.prepare("SELECT client_id, reason, severity FROM security_events WHERE event_type = 'tenant_offboarded' AND reason LIKE ?")
        .bind(`tenant ${gone.id}:%`)
        .first();
      if (!ev) await new Promise((r) => setTimeout(r, 50));
    }
    expect(ev).toMatchObject({ client_id: env.BOOTSTRAP_CLIENT_ID, severity: "high", reason: `tenant ${gone.id}: 2 clients disabled` });
  });

  it("an offboarded tenant no longer counts for placement", async () => {
    const store = new TenantStore(env.DB);
    const counts = async () => {
      const { results } = await env.DB.prepare("SELECT shard, COUNT(*) AS n FROM tenants WHERE offboarded_at IS NULL AND shard < 3 GROUP BY shard").all<{ shard: number; n: number }>();
      return [0, 1, 2].map((s) => results.find((r) => r.shard === s)?.n ?? 0);
    };
    // Over three shards: fill until they are even, then one more on each (0, 1, 2 in that order).
    for (let i = 0; i < 10 && new Set(await counts()).size > 1; i++) await store.create({ name: `Fill ${i}`, createdBy: "test", shards: 3 });
    expect(new Set(await counts()).size).toBe(1);
    const row = [];
    for (let i = 0; i < 3; i++) row.push(await store.create({ name: `Row ${i}`, createdBy: "test", shards: 3 }));
    expect(row.map((t) => t?.shard)).toEqual([0, 1, 2]);
    // Offboard the one on shard 1: counting it, the three would tie and shard 0 would win; not counting it, shard 1 does.
    expect((await offboard(row[1]?.id ?? "", { reason: "test" })).status).toBe(200);
    expect((await store.create({ name: "After offboarding", createdBy: "test", shards: 3 }))?.shard).toBe(1);
  });

  it("refuses the default tenant (409), ids of nothing or reserved (404), and bad reasons (400/415)", async () => {
    const def = await offboard(DEFAULT_TENANT_ID, { reason: "try" });
    expect(def.status).toBe(409);
    expect((await expectErrorBody(def, `/admin/tenants/${DEFAULT_TENANT_ID}`)).code).toBe("default_tenant");
    for (const id of ["ten_nothing", PLATFORM_TENANT_ID, "not-a-tenant"]) {
      const res = await offboard(id, { reason: "try" });
      expect(res.status, id).toBe(404);
      await expectErrorBody(res, `/admin/tenants/${id}`);
    }
    const t = await tenant("Bad Reasons Clinic");
    for (const body of [{}, { reason: "" }, { reason: " padded " }, { reason: "x".repeat(501) }, { reason: "two\nlines" }, { reason: "bidi \u202e" }, { reason: 5 }, { reason: "ok", force: true }, "{", "[]"]) {
      const res = await offboard(t.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      await expectErrorBody(res, `/admin/tenants/${t.id}`);
    }
    expect((await offboard(t.id, { reason: "ok" }, platform, { "content-type": "text/plain" })).status).toBe(415);
    expect((await gw(`/admin/tenants/${t.id}`, { method: "DELETE", headers: bearer(platform) })).status).toBe(415);
    // Nothing happened to it.
    expect(await (await gw(`/admin/tenants/${t.id}`, { headers: bearer(platform) })).json()).toMatchObject({ status: "active" });
  });

  it("is for platform admins only: a tenant's own admin gets 403, other scopes 403, no token 401", async () => {
    const t = await tenant("Self Offboard Attempt");
    const own = await clientToken(await client(t.id, ["admin"]));
    const res = await offboard(t.id, { reason: "mine" }, own);
    expect(res.status).toBe(403);
    expect((await expectErrorBody(res, `/admin/tenants/${t.id}`)).code).toBe("platform_admin_required");
    expect((await offboard(t.id, { reason: "x" }, await token("audit:read"))).status).toBe(403);
    expect((await gw(`/admin/tenants/${t.id}`, { method: "DELETE", headers: JSON_CT, body: JSON.stringify({ reason: "x" }) })).status).toBe(401);
    expect(await (await gw(`/admin/tenants/${t.id}`, { headers: bearer(platform) })).json()).toMatchObject({ status: "active" });
  });
});
