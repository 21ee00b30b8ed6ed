// The merged OpenAPI document: valid OpenAPI 3.1 per a real validator, one tag per service, every
// documented operation answered by a real route (not the gateway's 404) and every service route documented.
import { Validator } from "@seriousme/openapi-schema-validator";

export const name = "openapi: one valid 3.1 document for the whole platform";

export default async function (ctx) {
  const { assert } = ctx;
  const res = await ctx.json("/openapi.json");
  assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
  const doc = res.body;
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.equal(result.valid, true, JSON.stringify(result.errors, null, 1)?.slice(0, 2000));
  assert.equal(validator.version, "3.1");
  const tags = doc.tags.map((t) => t.name);
  for (const t of ["auth", "phi", "payments", "synthetic-phi", "devices"]) assert.ok(tags.includes(t), `tag ${t}`);
  assert.ok(Object.keys(doc.components.securitySchemes.oauth2.flows.clientCredentials.scopes).includes("phi:read"));

  // Every documented operation exists: the gateway answers it with something other than its own 404/405.
  const admin = await ctx.token("admin");
  let checked = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ["get", "post", "put", "delete", "patch"]) {
      const op = item[method];
      if (!op) continue;
      const concrete = path.replace(/\{[^}]+\}/g, "e2e-probe");
      const r = await ctx.fetch(concrete, { method: method.toUpperCase(), headers: { authorization: `Bearer ${admin}` } });
      const body = await r.text();
      const routeMissing = (r.status === 404 && body.includes('"not_found"') && body.includes("No route matches")) || r.status === 405;
      assert.ok(!routeMissing, `${method.toUpperCase()} ${path} is documented but not routed (${r.status})`);
      if (op.security?.[0]?.oauth2) assert.ok(Array.isArray(op.security[0].oauth2), `${path} security`);
      checked++;
    }
  }
  ctx.log(`${checked} documented operations answered by real routes`);
  assert.ok(checked > 50, `only ${checked} operations documented`);
}
