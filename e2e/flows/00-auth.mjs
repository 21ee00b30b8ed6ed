// The gateway's own flows: token, introspection, a scope refusal, revocation, admin client management.
export const name = "auth: token, introspect, scopes, revoke, clients";

export default async function (ctx) {
  const { assert } = ctx;
  const meta = await ctx.json("/.well-known/oauth-authorization-server");
  assert.equal(meta.status, 200);
  assert.equal(meta.body.issuer, ctx.base);
  const jwks = await ctx.json("/.well-known/jwks.json");
  assert.ok(jwks.body.keys.length >= 1);

  const client = await ctx.createClient({ name: "e2e billing", roles: ["billing"] });
  const token = await ctx.clientToken(client.client_id, client.client_secret, "payment:read");
  const intro = await ctx.json("/introspect", { token });
  assert.equal(intro.body.active, true);
  assert.equal(intro.body.client_id, client.client_id);

  // A token without phi:read is refused by the gateway before phi sees it.
  const denied = await ctx.json("/v1/phi/Patient?family=x", { token });
  assert.equal(denied.status, 403);
  assert.match(denied.headers.get("www-authenticate") ?? "", /insufficient_scope/);

  const revoke = await ctx.fetch("/oauth/revoke", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString("base64")}` },
    body: new URLSearchParams({ token }),
  });
  assert.equal(revoke.status, 200);
  assert.equal((await ctx.json("/introspect", { token })).body.active, false);
  assert.equal((await ctx.json("/v1/payments", { token })).status, 401);

  const disabled = await ctx.json(`/admin/clients/${client.client_id}`, { method: "DELETE", token: await ctx.token("admin") });
  assert.equal(disabled.body.disabled, true);
}
