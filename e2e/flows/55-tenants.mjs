// Tenants end to end (issue 18): a platform admin creates two tenants, which land on two PHI shards;
// a client in each creates a patient, a payment and a device; each sees only its own in searches,
// lists and by id, and the other's ids answer 404 as ids that do not exist.
export const name = "tenants: two tenants on two shards see only their own patients, payments and devices";

const YEAR = new Date().getUTCFullYear() + 2;

export default async function (ctx) {
  const { assert } = ctx;
  const admin = await ctx.token("admin");
  const tag = Date.now().toString(36);
  const family = `Tenante${tag.replace(/[0-9]/g, "x")}`;

  async function tenant(label) {
    const r = await ctx.json("/admin/tenants", { method: "POST", token: admin, body: { name: `e2e ${label} ${tag}` } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.id, /^ten_/);
    return r.body;
  }
  const tA = await tenant("alpha");
  const tB = await tenant("beta");
  // Placement spreads tenants: the two land on different shards.
  assert.notEqual(tA.shard, tB.shard, `shards ${tA.shard} and ${tB.shard}`);

  async function member(t) {
    const r = await ctx.json("/admin/clients", {
      method: "POST",
      token: admin,
      body: { name: `e2e member of ${t.id}`, roles: ["clinician", "billing"], scopes: ["device:write", "device:read"], tenant_id: t.id },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const token = await ctx.clientToken(r.body.client_id, r.body.client_secret, "phi:read phi:write payment:read payment:write device:read device:write");
    return { tenant: t, token };
  }
  const a = await member(tA);
  const b = await member(tB);

  async function seed(m, label) {
    const p = await ctx.json("/v1/phi/Patient", {
      method: "POST",
      token: m.token,
      headers: { "content-type": "application/fhir+json" },
      body: { resourceType: "Patient", name: [{ family, given: [label] }], birthDate: "1980-01-01" },
    });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    const pay = await ctx.json("/v1/payments", {
      method: "POST",
      token: m.token,
      headers: { "idempotency-key": `e2e-tenant-${label}-${tag}` },
      body: { amount: 1200, currency: "usd", card: { number: "4242424242424242", exp_month: 12, exp_year: YEAR, cvc: "123" }, capture: "automatic" },
    });
    assert.equal(pay.status, 201, JSON.stringify(pay.body));
    const dev = await ctx.json("/v1/devices", {
      method: "POST",
      token: m.token,
      body: { udi: `(01)00844588003288(21)T-${label}-${tag}`, model: "VitalsMonitor 3000", manufacturer: "Acme Medical", serial: `T-${label}-${tag}`, type: "bedside_monitor" },
    });
    assert.equal(dev.status, 201, JSON.stringify(dev.body));
    return { patient: p.body.id, payment: pay.body.id, device: dev.body.id };
  }
  const ownA = await seed(a, "Alpha");
  const ownB = await seed(b, "Beta");

  for (const [me, mine, theirs] of [
    [a, ownA, ownB],
    [b, ownB, ownA],
  ]) {
    const who = me.tenant.id;
    const found = await ctx.json(`/v1/phi/Patient?family=${family}`, { token: me.token });
    assert.equal(found.status, 200);
    assert.deepEqual((found.body.entry ?? []).map((e) => e.resource.id), [mine.patient], `${who}: patients`);
    const payments = await ctx.json("/v1/payments?limit=100", { token: me.token });
    assert.equal(payments.status, 200);
    assert.deepEqual(payments.body.data.map((p) => p.id), [mine.payment], `${who}: payments`);
    const devices = await ctx.json("/v1/devices?limit=100", { token: me.token });
    assert.equal(devices.status, 200, JSON.stringify(devices.body));
    assert.deepEqual(devices.body.data.map((d) => d.id), [mine.device], `${who}: devices`);
    // The other tenant's ids: 404, as ids that do not exist.
    assert.equal((await ctx.json(`/v1/phi/Patient/${theirs.patient}`, { token: me.token })).status, 404);
    assert.equal((await ctx.json(`/v1/payments/${theirs.payment}`, { token: me.token })).status, 404);
    assert.equal((await ctx.json(`/v1/devices/${theirs.device}`, { token: me.token })).status, 404);
    // Their own, by id.
    assert.equal((await ctx.json(`/v1/phi/Patient/${mine.patient}`, { token: me.token })).status, 200);
    assert.equal((await ctx.json(`/v1/payments/${mine.payment}`, { token: me.token })).status, 200);
    assert.equal((await ctx.json(`/v1/devices/${mine.device}`, { token: me.token })).status, 200);
  }
  ctx.log(`tenants ${tA.id} on shard ${tA.shard} and ${tB.id} on shard ${tB.shard}: each sees only its own`);
}
