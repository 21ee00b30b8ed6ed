import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyPrincipal } from "../../../shared/principal";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { ClientStore } from "../src/clients";
import { authConfig } from "../src/config";
import worker from "../src/index";
import { BASE, basic, claims, clientToken, expectErrorBody, FORM, form, gw, JSON_CT, randomIp, signWith, token, withBearer, type CreatedClient } from "./helpers";

interface ClientBody extends CreatedClient {
  tenant_id: string | null;
}
interface Tenant {
  id: string;
  shard: number;
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function post(path: string, tok: string, body: unknown): Promise<Response> {
  return gw(path, { method: "POST", headers: { ...bearer(tok), ...JSON_CT }, body: JSON.stringify(body) });
}

async function mkClient(tok: string, body: Record<string, unknown>): Promise<ClientBody> {
  const res = await post("/admin/clients", tok, { name: "c", ...body });
  if (res.status !== 201) throw new Error(`create client: ${res.status} ${await res.text()}`);
  return res.json<ClientBody>();
}

/** The gateway's fetch handler with the phi binding pointed at a worker that echoes the principal it receives. */
async function principalFor(tok: string): Promise<Record<string, unknown>> {
  const ctx = createExecutionContext();
  const handler = worker as Required<Pick<ExportedHandler<Env>, "fetch">>;
  const init: RequestInit = { headers: bearer(tok) };
  const res = await handler.fetch(new Request(`${BASE}/v1/phi/Patient/abc`, init) as Request<unknown, IncomingRequestCfProperties>, { ...env, PHI: env.PRINCIPAL_ECHO }, ctx);
  await waitOnExecutionContext(ctx);
  expect(res.status).toBe(200);
  const { principal } = await res.json<{ principal: string }>();
  const v = await verifyPrincipal(env.GATEWAY_HMAC_KEY, principal, Math.floor(Date.now() / 1000));
  if (!v.ok) throw new Error(`principal: ${v.reason}`);
  return v.principal;
}

let platform: string;
let a: Tenant;
let b: Tenant;
let adminA: ClientBody;
let tokA: string;
let clientB: ClientBody;

describe("clients belong to a tenant", () => {
  beforeAll(async () => {
    platform = await token("admin");
    const mk = async (name: string) => (await post("/admin/tenants", platform, { name })).json<Tenant>();
    a = await mk("Tenant A Hospital");
    b = await mk("Tenant B Clinic");
    // A platform admin creates the first admin of each tenant.
    adminA = await mkClient(platform, { name: "admin of A", roles: ["admin"], tenant_id: a.id });
    tokA = await clientToken(adminA);
    clientB = await mkClient(platform, { name: "clinician of B", roles: ["clinician"], tenant_id: b.id });
  });

  it("a platform admin creates clients in any tenant, the default tenant when none is named, a platform client with null", async () => {
    expect(adminA.tenant_id).toBe(a.id);
    expect(clientB.tenant_id).toBe(b.id);
    expect((await mkClient(platform, { roles: ["clinician"] })).tenant_id).toBe(DEFAULT_TENANT_ID);
    expect((await mkClient(platform, { roles: ["auditor"], tenant_id: null })).tenant_id).toBeNull();
    const read = await gw(`/admin/clients/${adminA.client_id}`, { headers: bearer(platform) });
    expect((await read.json<ClientBody>()).tenant_id).toBe(a.id);
  });

  it("refuses an unknown, reserved or malformed tenant_id with a 400 problem", async () => {
    for (const [tenant_id, code] of [["ten_nothing", "tenant_not_found"], [PLATFORM_TENANT_ID, "invalid_request"], ["nope", "invalid_request"], [7, "invalid_request"]] as const) {
      const res = await post("/admin/clients", platform, { name: "x", roles: ["clinician"], tenant_id });
      expect(res.status, String(tenant_id)).toBe(400);
      expect((await expectErrorBody(res, "/admin/clients")).code).toBe(code);
    }
  });

  it("tokens carry tenant_id and the private tenant_shard; a platform client's carry neither", async () => {
    const claimsA = decodeJwt(tokA);
    expect(claimsA.tenant_id).toBe(a.id);
    expect(claimsA.tenant_shard).toBe(a.shard);
    const def = decodeJwt(await clientToken(await mkClient(platform, { roles: ["clinician"] })));
    expect([def.tenant_id, def.tenant_shard]).toEqual([DEFAULT_TENANT_ID, 0]);
    const boot = decodeJwt(platform);
    expect("tenant_id" in boot || "tenant_shard" in boot).toBe(false);
    const plat = decodeJwt(await clientToken(await mkClient(platform, { roles: ["auditor"], tenant_id: null })));
    expect("tenant_id" in plat || "tenant_shard" in plat).toBe(false);
    // Introspection names the tenant.
    const intro = await gw("/oauth/introspect", {
      method: "POST",
      headers: { ...FORM, authorization: basic(adminA.client_id, adminA.client_secret), "cf-connecting-ip": randomIp() },
      body: form({ token: tokA }),
    });
    expect(await intro.json()).toMatchObject({ active: true, tenant_id: a.id });
  });

  it("the gateway signs the token's tenant and shard into the principal (ten_platform on shard 0 for a platform client)", async () => {
    // Both tenants were placed off shard 0 (the default tenant's): the shard really comes from the token.
    expect(a.shard).not.toBe(0);
    expect(b.shard).not.toBe(a.shard);
    const clinA = await mkClient(tokA, { roles: ["clinician"] });
    const pa = await principalFor(await clientToken(clinA, "phi:read"));
    expect(pa).toMatchObject({ clientId: clinA.client_id, tenantId: a.id, shard: a.shard });
    const pb = await principalFor(await clientToken(clientB, "phi:read"));
    expect(pb).toMatchObject({ clientId: clientB.client_id, tenantId: b.id, shard: b.shard });
    expect(await principalFor(await token("phi:read"))).toMatchObject({ tenantId: PLATFORM_TENANT_ID, shard: 0 });
  });

  it("the verifier refuses tenant claims out of shape: a lone tenant_id or shard, the reserved id, a shard out of range", async () => {
    const bad = [
      { tenant_id: a.id },
      { tenant_shard: 1 },
      { tenant_id: PLATFORM_TENANT_ID, tenant_shard: 0 },
      { tenant_id: "tenant-a", tenant_shard: 0 },
      { tenant_id: a.id, tenant_shard: 16 },
      { tenant_id: a.id, tenant_shard: -1 },
      { tenant_id: a.id, tenant_shard: 1.5 },
      { tenant_id: a.id, tenant_shard: "1" },
    ];
    for (const over of bad) {
      const forged = await signWith(env.CURRENT_KEY, claims(over));
      expect((await withBearer(forged)).status, JSON.stringify(over)).toBe(401);
    }
    // The same key and claims with a well-formed pair pass the verifier.
    const good = await signWith(env.CURRENT_KEY, claims({ tenant_id: a.id, tenant_shard: a.shard }));
    expect((await withBearer(good)).status).not.toBe(401);
  });

  it("a tenant's admin creates clients in its own tenant only", async () => {
    expect((await mkClient(tokA, { roles: ["clinician"] })).tenant_id).toBe(a.id);
    expect((await mkClient(tokA, { roles: ["admin"], tenant_id: a.id })).tenant_id).toBe(a.id);
    for (const tenant_id of [b.id, DEFAULT_TENANT_ID, null, "ten_nothing"]) {
      const res = await post("/admin/clients", tokA, { name: "x", roles: ["clinician"], tenant_id });
      expect(res.status, String(tenant_id)).toBe(403);
      expect((await expectErrorBody(res, "/admin/clients")).code).toBe("tenant_forbidden");
    }
  });

  it("a tenant's admin sees, reads and disables its own tenant's clients only: another tenant's are 404", async () => {
    const mine = await mkClient(tokA, { roles: ["billing"] });
    const listed: ClientBody[] = [];
    let cursor: string | null = null;
    do {
      const page: { data: ClientBody[]; next_cursor: string | null } = await (await gw(`/admin/clients?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: bearer(tokA) })).json();
      listed.push(...page.data);
      cursor = page.next_cursor;
    } while (cursor);
    expect(listed.length).toBeGreaterThanOrEqual(4);
    expect(listed.every((c) => c.tenant_id === a.id)).toBe(true);
    expect(listed.map((c) => c.client_id)).toContain(mine.client_id);

    for (const id of [clientB.client_id, env.BOOTSTRAP_CLIENT_ID]) {
      const read = await gw(`/admin/clients/${id}`, { headers: bearer(tokA) });
      expect(read.status, id).toBe(404);
      expect((await expectErrorBody(read, "/admin/clients/x")).code).toBe("client_not_found");
      const del = await gw(`/admin/clients/${id}`, { method: "DELETE", headers: bearer(tokA) });
      expect(del.status, id).toBe(404);
    }
    // B's client is untouched: it still gets tokens.
    expect(decodeJwt(await clientToken(clientB)).tenant_id).toBe(b.id);
    const del = await gw(`/admin/clients/${mine.client_id}`, { method: "DELETE", headers: bearer(tokA) });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ client_id: mine.client_id, disabled: true, tenant_id: a.id });
    // The platform admin sees every tenant's clients.
    for (const id of [clientB.client_id, mine.client_id]) expect((await gw(`/admin/clients/${id}`, { headers: bearer(platform) })).status).toBe(200);
  });

  it("tenants API: a tenant's admin gets 403, other roles 403, no token 401", async () => {
    const clinicianA = await clientToken(await mkClient(tokA, { roles: ["clinician"] }));
    const auditorA = await clientToken(await mkClient(tokA, { roles: ["auditor"] }));
    const cases = [["GET", "/admin/tenants"], ["GET", `/admin/tenants/${a.id}`], ["POST", "/admin/tenants"]] as const;
    for (const [method, path] of cases) {
      const init = (tok?: string): RequestInit => ({ method, headers: { ...(tok ? bearer(tok) : {}), ...JSON_CT }, ...(method === "POST" ? { body: JSON.stringify({ name: "Should Not Exist" }) } : {}) });
      const asAdmin = await gw(path, init(tokA));
      expect(asAdmin.status, `${method} ${path} tenant admin`).toBe(403);
      expect((await expectErrorBody(asAdmin, path)).code).toBe("platform_admin_required");
      for (const tok of [clinicianA, auditorA]) {
        const res = await gw(path, init(tok));
        expect(res.status, `${method} ${path}`).toBe(403);
        expect((await expectErrorBody(res, path)).code).toBe("insufficient_scope");
      }
      expect((await gw(path, init())).status).toBe(401);
      expect((await gw(path, init(platform))).status, `${method} ${path} platform`).toBe(method === "POST" ? 201 : 200);
    }
    // Tenant clients never reach client administration without the admin scope either.
    expect((await gw("/admin/clients", { headers: bearer(clinicianA) })).status).toBe(403);
  });

  it("a tenant's client cannot introspect or revoke another tenant's tokens", async () => {
    const tokB = await clientToken(clientB);
    const asA = { ...FORM, authorization: basic(adminA.client_id, adminA.client_secret) };
    const intro = await gw("/oauth/introspect", { method: "POST", headers: { ...asA, "cf-connecting-ip": randomIp() }, body: form({ token: tokB }) });
    expect(await intro.json()).toEqual({ active: false });
    const rev = await gw("/oauth/revoke", { method: "POST", headers: { ...asA, "cf-connecting-ip": randomIp() }, body: form({ token: tokB }) });
    expect(rev.status).toBe(200);
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM revoked_tokens WHERE client_id = ?").bind(clientB.client_id).first<{ n: number }>();
    expect(row?.n).toBe(0);
    // The platform admin can.
    const platIntro = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: basic(env.BOOTSTRAP_CLIENT_ID, env.BOOTSTRAP_CLIENT_SECRET), "cf-connecting-ip": randomIp() }, body: form({ token: tokB }) });
    expect(await platIntro.json()).toMatchObject({ active: true, tenant_id: b.id });
  });

  it("a tenant's auditor sees only its own tenant's clients' security events", async () => {
    // A scope denial by B's clinician, and one by a client of A.
    const tokB = await clientToken(clientB, "phi:read");
    expect((await gw("/admin/clients", { headers: bearer(tokB) })).status).toBe(403);
    const auditorA = await mkClient(tokA, { roles: ["auditor"] });
    const audTok = await clientToken(auditorA, "audit:read");
    expect((await gw("/admin/keys", { headers: bearer(audTok) })).status).toBe(403);
    // Security events are stored in the request's waitUntil: poll until both denials are there.
    const page = async (tok: string) => (await (await gw("/admin/security-events?limit=100", { headers: bearer(tok) })).json<{ data: { client_id: string | null }[] }>()).data;
    const platformAudit = await token("audit:read");
    let all = await page(platformAudit);
    for (let i = 0; i < 100 && !(all.some((e) => e.client_id === clientB.client_id) && all.some((e) => e.client_id === auditorA.client_id)); i++) {
      await new Promise((r) => setTimeout(r, 50));
      all = await page(platformAudit);
    }
    expect(all.some((e) => e.client_id === clientB.client_id)).toBe(true);
    const events = await page(audTok);
    expect(events.some((e) => e.client_id === auditorA.client_id)).toBe(true);
    const idsOfA = new Set((await env.DB.prepare("SELECT id FROM clients WHERE tenant_id = ?").bind(a.id).all<{ id: string }>()).results.map((r) => r.id));
    for (const e of events) expect(idsOfA.has(e.client_id ?? ""), String(e.client_id)).toBe(true);
  });

  it("device clients (RPC from the devices worker) go to the tenant it names; ten_platform makes a platform client; none, the default", async () => {
    type Registry = { createDeviceClient(i: { deviceId: string; name: string; createdBy: string; tenantId?: string }): Promise<{ client_id: string; client_secret: string }> };
    const registry = (exports as unknown as { ClientRegistry: Registry }).ClientRegistry;
    const tenantOf = async (id: string) => (await env.DB.prepare("SELECT tenant_id FROM clients WHERE id = ?").bind(id).first<{ tenant_id: string | null }>())?.tenant_id;
    const inA = await registry.createDeviceClient({ deviceId: "dev_ten_a", name: "monitor", createdBy: "cli_maker", tenantId: a.id });
    expect(await tenantOf(inA.client_id)).toBe(a.id);
    expect(decodeJwt(await clientToken(inA))).toMatchObject({ tenant_id: a.id, tenant_shard: a.shard, device_id: "dev_ten_a" });
    const plat = await registry.createDeviceClient({ deviceId: "dev_ten_p", name: "monitor", createdBy: "cli_maker", tenantId: PLATFORM_TENANT_ID });
    expect(await tenantOf(plat.client_id)).toBeNull();
    const def = await registry.createDeviceClient({ deviceId: "dev_ten_d", name: "monitor", createdBy: "cli_maker" });
    expect(await tenantOf(def.client_id)).toBe(DEFAULT_TENANT_ID);
    // An unknown tenant is refused by the store the registry calls (checked here in this isolate: an RPC rejection
    // through the loopback binding surfaces as an unhandled error in the pool).
    const store = new ClientStore(env.DB, authConfig(env));
    await expect(store.create({ name: "m", roles: ["device"], scopes: [], deviceId: "dev_ten_x", createdBy: "c", tenantId: "ten_nothing" })).rejects.toMatchObject({ status: 400, code: "tenant_not_found" });
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM clients WHERE device_id = 'dev_ten_x'").first("n")).toBe(0);
  });
});
