import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../../../shared/tenants";
import { authConfig } from "../src/config";
import { TenantStore, tenantNameKey } from "../src/tenants";
import { expectErrorBody, gw, JSON_CT, token } from "./helpers";

interface TenantBody {
  id: string;
  name: string;
  shard: number;
  status: string;
  created_at: string;
  created_by: string;
  offboarded_at: string | null;
}

async function admin(): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await token("admin")}` };
}

async function createTenant(name: string, headers?: Record<string, string>): Promise<Response> {
  return gw("/admin/tenants", { method: "POST", headers: { ...(headers ?? (await admin())), ...JSON_CT }, body: JSON.stringify({ name }) });
}

async function allTenants(): Promise<TenantBody[]> {
  const h = await admin();
  const out: TenantBody[] = [];
  let cursor: string | null = null;
  do {
    const res = await gw(`/admin/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: h });
    expect(res.status).toBe(200);
    const page = await res.json<{ data: TenantBody[]; next_cursor: string | null }>();
    expect(page.data.length).toBeLessThanOrEqual(2);
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** The placement rule as the README states it, applied to what the API lists. */
function expectedShard(tenants: TenantBody[], shards: number): number {
  const counts = Array.from({ length: shards }, (_, i) => tenants.filter((t) => t.shard === i && t.status === "active").length);
  return counts.indexOf(Math.min(...counts));
}

describe("tenants API", () => {
  it("the migration created the default tenant on shard 0, and ten_platform is never stored", async () => {
    const res = await gw(`/admin/tenants/${DEFAULT_TENANT_ID}`, { headers: await admin() });
    expect(res.status).toBe(200);
    const t = await res.json<TenantBody>();
    expect(t).toMatchObject({ id: DEFAULT_TENANT_ID, shard: 0, status: "active", offboarded_at: null });
    expect((await gw(`/admin/tenants/${PLATFORM_TENANT_ID}`, { headers: await admin() })).status).toBe(404);
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM tenants WHERE id = ?").bind(PLATFORM_TENANT_ID).first<{ n: number }>();
    expect(row?.n).toBe(0);
  });

  it("creates a tenant (201, ten_ id, shard, created_at, Location) and reads it back", async () => {
    const res = await createTenant("Clínica São Paulo");
    expect(res.status).toBe(201);
    const t = await res.json<TenantBody>();
    expect(t.id).toMatch(TENANT_ID_PATTERN);
    expect(t.id).not.toBe(DEFAULT_TENANT_ID);
    expect(t.name).toBe("Clínica São Paulo");
    expect(Number.isInteger(t.shard)).toBe(true);
    expect(Date.parse(t.created_at)).not.toBeNaN();
    expect(t.created_by).toBe(env.BOOTSTRAP_CLIENT_ID);
    expect(res.headers.get("location")).toBe(`/admin/tenants/${t.id}`);
    const read = await gw(`/admin/tenants/${t.id}`, { headers: await admin() });
    expect(await read.json()).toEqual(t);
  });

  it("places each new tenant on the shard with the fewest active tenants, the lowest index on a tie", async () => {
    const shards = authConfig(env).PHI_SHARDS;
    expect(shards).toBe(4);
    const placed: number[] = [];
    for (let i = 0; i < 9; i++) {
      const want = expectedShard(await allTenants(), shards);
      const res = await createTenant(`Spread Hospital ${i}`);
      expect(res.status).toBe(201);
      const t = await res.json<TenantBody>();
      expect(t.shard, `tenant ${i}`).toBe(want);
      placed.push(t.shard);
    }
    // Every shard got new tenants, and the active tenants per shard differ by at most one.
    expect(new Set(placed)).toEqual(new Set([0, 1, 2, 3]));
    const all = await allTenants();
    const counts = [0, 1, 2, 3].map((s) => all.filter((t) => t.shard === s).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  it("tenants created at the same moment are still spread evenly (placement is one statement)", async () => {
    const store = new TenantStore(env.DB);
    const before = await allTenants();
    const created = await Promise.all(Array.from({ length: 8 }, (_, i) => store.create({ name: `Parallel Clinic ${i}`, createdBy: "test", shards: 4 })));
    expect(created.every((t) => t !== undefined)).toBe(true);
    const all = await allTenants();
    expect(all.length).toBe(before.length + 8);
    const counts = [0, 1, 2, 3].map((s) => all.filter((t) => t.shard === s && t.status === "active").length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    // With one shard configured, every tenant goes to shard 0; never beyond the configured count.
    const one = await store.create({ name: "Single Shard Lab", createdBy: "test", shards: 1 });
    expect(one?.shard).toBe(0);
  });

  it("validates PHI_SHARDS (1 to 16)", () => {
    // The generated Env types the var as the literal in wrangler.toml; an operator sets any string.
    const withShards = (v: string) => authConfig({ ...env, PHI_SHARDS: v } as unknown as Env);
    for (const bad of ["0", "17", "-1", "four", "2.5"]) expect(() => withShards(bad), bad).toThrow();
    expect(withShards("16").PHI_SHARDS).toBe(16);
    expect(withShards("1").PHI_SHARDS).toBe(1);
  });

  it("refuses a duplicate name (compared case- and width-insensitively) with 409", async () => {
    expect((await createTenant("Northwind Health")).status).toBe(201);
    for (const dup of ["Northwind Health", "NORTHWIND  health", "Ｎｏｒｔｈｗｉｎｄ Health"]) {
      const res = await createTenant(dup);
      expect(res.status, dup).toBe(409);
      expect((await expectErrorBody(res, "/admin/tenants")).code).toBe("tenant_name_taken");
    }
    expect(tenantNameKey("ACME  Health")).toBe(tenantNameKey("acme health"));
  });

  it("validates the body: name required, bounded, no control or bidi characters, nothing else", async () => {
    const h = { ...(await admin()), ...JSON_CT };
    const bad: unknown[] = [
      {},
      { name: "" },
      { name: " Leading space" },
      { name: "Trailing space " },
      { name: "x".repeat(101) },
      { name: "Evil\u202eemaN" },
      { name: "Tab\there" },
      { name: "<script>" },
      { name: 42 },
      { name: null },
      { name: "Ok", shard: 2 },
      { name: "Ok", id: "ten_mine" },
      [],
    ];
    for (const body of bad) {
      const res = await gw("/admin/tenants", { method: "POST", headers: h, body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).toBe(400);
      await expectErrorBody(res, "/admin/tenants");
    }
    expect((await gw("/admin/tenants", { method: "POST", headers: { ...(await admin()), "content-type": "text/plain" }, body: "{}" })).status).toBe(415);
    expect((await gw("/admin/tenants", { method: "POST", headers: h, body: "{" })).status).toBe(400);
  });

  it("pages with a keyset cursor: every tenant once, in id order", async () => {
    const all = await allTenants();
    const ids = all.map((t) => t.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids).toContain(DEFAULT_TENANT_ID);
    const h = await admin();
    for (const q of ["limit=0", "limit=101", "limit=x", "cursor=nope", `cursor=${"ten_" + "a".repeat(65)}`]) {
      expect((await gw(`/admin/tenants?${q}`, { headers: h })).status, q).toBe(400);
    }
  });

  it("answers 404 for ids of nothing, malformed or reserved", async () => {
    const h = await admin();
    for (const id of ["ten_nothing", PLATFORM_TENANT_ID, "cli_x", "..%2Fclients", "%E2%80%AE"]) {
      const res = await gw(`/admin/tenants/${id}`, { headers: h });
      expect(res.status, id).toBe(404);
      await expectErrorBody(res, `/admin/tenants/${id}`);
    }
  });

  it("is for platform admins only: no token 401, no admin scope 403", async () => {
    expect((await gw("/admin/tenants")).status).toBe(401);
    expect((await createTenant("No Token", {})).status).toBe(401);
    const reader = { authorization: `Bearer ${await token("audit:read")}` };
    for (const [method, path] of [["GET", "/admin/tenants"], ["GET", `/admin/tenants/${DEFAULT_TENANT_ID}`], ["POST", "/admin/tenants"]] as const) {
      const res = await gw(path, { method, headers: { ...reader, ...JSON_CT }, ...(method === "POST" ? { body: JSON.stringify({ name: "Nope" }) } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect((await expectErrorBody(res, path)).code).toBe("insufficient_scope");
    }
  });
});
