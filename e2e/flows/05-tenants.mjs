// Tenants at the gateway: a platform admin creates two tenants (placed on different PHI shards) and the first
// admin of one; that tenant admin manages its own clients only; tokens carry the tenant; offboarding refuses them.
export const name = "auth: tenants, tenant admins, tenant claims, offboarding";

const claimsOf = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));

export default async function (ctx) {
  const { assert } = ctx;
  const platform = await ctx.token("admin");
  const suffix = Math.random().toString(36).slice(2, 8);
  const mk = async (name) => {
    const r = await ctx.json("/admin/tenants", { method: "POST", token: platform, body: { name } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const a = await mk(`E2E North ${suffix}`);
  const b = await mk(`E2E South ${suffix}`);
  assert.match(a.id, /^ten_/);
  assert.notEqual(a.shard, b.shard, "two tenants created one after the other go to different shards");
  assert.equal((await ctx.json("/admin/tenants", { method: "POST", token: platform, body: { name: `e2e north ${suffix}` } })).status, 409);

  const client = async (token, body) => {
    const r = await ctx.json("/admin/clients", { method: "POST", token, body: { name: "e2e", ...body } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const adminA = await client(platform, { roles: ["admin"], tenant_id: a.id });
  const tokA = await ctx.clientToken(adminA.client_id, adminA.client_secret, "admin");
  assert.equal(claimsOf(tokA).tenant_id, a.id);
  assert.equal(claimsOf(tokA).tenant_shard, a.shard);
  assert.equal(claimsOf(platform).tenant_id, undefined);

  const clinA = await client(tokA, { roles: ["clinician"] });
  assert.equal(clinA.tenant_id, a.id);
  const clinB = await client(platform, { roles: ["clinician"], tenant_id: b.id });
  assert.equal((await ctx.json(`/admin/clients/${clinB.client_id}`, { token: tokA })).status, 404);
  assert.equal((await ctx.json("/admin/clients", { method: "POST", token: tokA, body: { name: "x", roles: ["clinician"], tenant_id: b.id } })).status, 403);
  assert.equal((await ctx.json("/admin/tenants", { token: tokA })).status, 403);
  const listed = await ctx.json("/admin/clients?limit=100", { token: tokA });
  assert.ok(listed.body.data.every((c) => c.tenant_id === a.id));

  const tokB = await ctx.clientToken(clinB.client_id, clinB.client_secret, "phi:read");
  assert.notEqual((await ctx.json("/v1/phi/Patient?family=e2e", { token: tokB })).status, 401);
  const off = await ctx.json(`/admin/tenants/${b.id}`, { method: "DELETE", token: platform, body: { reason: "e2e offboarding" } });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.equal(off.body.tenant.status, "offboarded");
  assert.equal(off.body.clients_disabled, 1);
  assert.deepEqual([...off.body.data_services].sort(), ["devices", "payments", "phi"]);
  // Refused by the isolate that answered at once, by every other within the revocation bound: poll, never time.
  let status = 0;
  for (let i = 0; i < 100 && status !== 401; i++) {
    status = (await ctx.json("/v1/phi/Patient?family=e2e", { token: tokB })).status;
    if (status !== 401) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 401);
  assert.equal((await ctx.json(`/admin/tenants/${b.id}`, { token: platform })).body.status, "offboarded");
  assert.equal((await ctx.json("/admin/tenants/ten_default", { method: "DELETE", token: platform, body: { reason: "no" } })).status, 409);
}
