import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { decodeJwt, decodeProtectedHeader } from "jose";
import {
  basic,
  bootstrapAuth,
  clientToken,
  createClient,
  FORM,
  form,
  gw,
  randomIp,
  token,
  tokenRequest,
} from "./helpers";

describe("POST /oauth/token", () => {
  it("issues an RFC 9068 access token with HTTP Basic", async () => {
    const res = await tokenRequest({ grant_type: "client_credentials", scope: "phi:read admin" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await res.json<{ access_token: string; token_type: string; expires_in: number; scope: string }>();
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 900, scope: "phi:read admin" });
    const header = decodeProtectedHeader(body.access_token);
    expect(header).toMatchObject({ alg: "ES256", typ: "at+jwt", kid: "test-current" });
    const c = decodeJwt(body.access_token);
    expect(c).toMatchObject({
      iss: "http://127.0.0.1:8787",
      aud: "health-platform",
      sub: env.BOOTSTRAP_CLIENT_ID,
      client_id: env.BOOTSTRAP_CLIENT_ID,
      scope: "phi:read admin",
      roles: ["admin"],
    });
    expect(c.exp).toBe((c.iat ?? 0) + 900);
    expect(c.nbf).toBe(c.iat);
    expect(typeof c.jti).toBe("string");
  });

  it("accepts credentials in the form body, JSON bodies, and the /token alias", async () => {
    const viaForm = await tokenRequest(
      { grant_type: "client_credentials", client_id: env.BOOTSTRAP_CLIENT_ID, client_secret: env.BOOTSTRAP_CLIENT_SECRET, scope: "admin" },
      {},
    );
    expect(viaForm.status).toBe(200);
    const viaJson = await gw("/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: bootstrapAuth() },
      body: JSON.stringify({ grant_type: "client_credentials", scope: "admin" }),
    });
    expect(viaJson.status).toBe(200);
    const alias = await gw("/token", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({ grant_type: "client_credentials" }) });
    expect(alias.status).toBe(200);
    // No scope requested: every scope the client is allowed.
    const all = (await alias.json<{ scope: string }>()).scope.split(" ");
    expect(all).toContain("phi:read");
    expect(all).toContain("device:connect");
  });

  const errorCases: [string, () => Promise<Response>, number, string][] = [
    ["missing grant_type", () => tokenRequest({}), 400, "invalid_request"],
    ["unsupported grant", () => tokenRequest({ grant_type: "password", username: "a", password: "b" }), 400, "unsupported_grant_type"],
    ["authorization_code grant", () => tokenRequest({ grant_type: "authorization_code", code: "x" }), 400, "unsupported_grant_type"],
    ["unknown scope", () => tokenRequest({ grant_type: "client_credentials", scope: "phi:destroy" }), 400, "invalid_scope"],
    ["malformed scope", () => tokenRequest({ grant_type: "client_credentials", scope: "PHI READ" }), 400, "invalid_scope"],
    ["no credentials", () => tokenRequest({ grant_type: "client_credentials" }, {}), 401, "invalid_client"],
    ["wrong secret", () => tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(env.BOOTSTRAP_CLIENT_ID, "nope") }), 401, "invalid_client"],
    ["unknown client", () => tokenRequest({ grant_type: "client_credentials" }, { authorization: basic("cli_nobody", "x") }), 401, "invalid_client"],
    ["malformed Basic", () => tokenRequest({ grant_type: "client_credentials" }, { authorization: "Basic !!!" }), 400, "invalid_request"],
    ["Basic without colon", () => tokenRequest({ grant_type: "client_credentials" }, { authorization: "Basic " + btoa("nocolon") }), 400, "invalid_request"],
    [
      "two authentication methods",
      () => tokenRequest({ grant_type: "client_credentials", client_secret: "x" }, { authorization: bootstrapAuth() }),
      400,
      "invalid_request",
    ],
    [
      "repeated parameter",
      () =>
        gw("/oauth/token", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: "grant_type=client_credentials&grant_type=client_credentials" }),
      400,
      "invalid_request",
    ],
    [
      "wrong content type",
      () => gw("/oauth/token", { method: "POST", headers: { "content-type": "text/plain", authorization: bootstrapAuth() }, body: "grant_type=client_credentials" }),
      415,
      "invalid_request",
    ],
    [
      "JSON that is not an object",
      () => gw("/oauth/token", { method: "POST", headers: { "content-type": "application/json", authorization: bootstrapAuth() }, body: "[1,2]" }),
      400,
      "invalid_request",
    ],
    [
      "broken JSON",
      () => gw("/oauth/token", { method: "POST", headers: { "content-type": "application/json", authorization: bootstrapAuth() }, body: "{" }),
      400,
      "invalid_request",
    ],
    [
      "JSON parameter of the wrong type",
      () =>
        gw("/oauth/token", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: bootstrapAuth() },
          body: JSON.stringify({ grant_type: ["client_credentials"] }),
        }),
      400,
      "invalid_request",
    ],
    ["oversized parameter", () => tokenRequest({ grant_type: "client_credentials", scope: "a".repeat(5000) }), 400, "invalid_request"],
  ];

  for (const [name, call, status, error] of errorCases) {
    it(`answers ${status} ${error} for ${name}`, async () => {
      const res = await call();
      expect(res.status).toBe(status);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const body = await res.json<{ error: string; status: number; error_description: string }>();
      expect(body.error).toBe(error);
      expect(body.status).toBe(status);
      if (status === 401) expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
    });
  }

  it("refuses a scope beyond the client's roles and scopes, and wildcards it was not given", async () => {
    const billing = await createClient({ name: "billing app", roles: ["billing"] });
    expect((await tokenRequest({ grant_type: "client_credentials", scope: "payment:read" }, { authorization: basic(billing.client_id, billing.client_secret) })).status).toBe(200);
    for (const scope of ["phi:read", "payment:approve", "payment:*", "admin"]) {
      const res = await tokenRequest({ grant_type: "client_credentials", scope }, { authorization: basic(billing.client_id, billing.client_secret) });
      expect(res.status, scope).toBe(400);
    }
  });

  it("grants `resource:*` scopes to clients that hold the wildcard", async () => {
    const c = await createClient({ name: "phi service", scopes: ["phi:*"] });
    expect(c.allowed_scopes).toEqual(["phi:*"]);
    const wildcard = await clientToken(c, "phi:*");
    expect(decodeJwt(wildcard).scope).toBe("phi:*");
    // A narrower scope inside the wildcard can be asked for too.
    expect(decodeJwt(await clientToken(c, "phi:write")).scope).toBe("phi:write");
    // The wildcard token passes a route needing phi:read and one needing phi:write at the gateway.
    for (const [method, path] of [["GET", "/v1/phi/Patient/x"], ["POST", "/v1/phi/Patient"]] as const) {
      const res = await gw(path, { method, headers: { authorization: `Bearer ${wildcard}` } });
      expect([401, 403]).not.toContain(res.status);
    }
    const denied = await gw("/v1/payments/pay_1", { headers: { authorization: `Bearer ${wildcard}` } });
    expect(denied.status).toBe(403);
  });
});

describe("introspection", () => {
  it("POST /oauth/introspect (RFC 7662) for an authenticated client", async () => {
    const tok = await token("phi:read");
    const res = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({ token: tok }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ active: true, scope: "phi:read", client_id: env.BOOTSTRAP_CLIENT_ID, token_type: "Bearer" });
    const bad = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({ token: "garbage" }) });
    expect(await bad.json()).toEqual({ active: false });
    const missing = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({}) });
    expect(missing.status).toBe(400);
    const unauth = await gw("/oauth/introspect", { method: "POST", headers: { ...FORM, "cf-connecting-ip": randomIp() }, body: form({ token: tok }) });
    expect(unauth.status).toBe(401);
  });

  it("GET /introspect with the bearer token itself", async () => {
    const tok = await token("payment:read");
    const res = await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } });
    expect(await res.json()).toMatchObject({ active: true, scope: "payment:read" });
    expect(await (await gw("/introspect", { headers: { authorization: "Bearer x.y.z" } })).json()).toEqual({ active: false });
    const none = await gw("/introspect");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="health-platform"');
  });
});

describe("POST /oauth/revoke (RFC 7009)", () => {
  it("revokes a client's own token everywhere; other clients cannot revoke it", async () => {
    const a = await createClient({ name: "a", roles: ["clinician"] });
    const b = await createClient({ name: "b", roles: ["clinician"] });
    const tok = await clientToken(a, "phi:read");
    const revoke = (who: { client_id: string; client_secret: string }) =>
      gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(who.client_id, who.client_secret) }, body: form({ token: tok, token_type_hint: "access_token" }) });
    // Another client's revocation request is answered 200 but changes nothing.
    expect((await revoke(b)).status).toBe(200);
    expect((await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).status).toBe(200);
    expect(await (await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).json()).toMatchObject({ active: true });
    expect((await revoke(a)).status).toBe(200);
    expect(await (await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).json()).toEqual({ active: false });
    const refused = await gw("/v1/phi/Patient/p1", { headers: { authorization: `Bearer ${tok}` } });
    expect(refused.status).toBe(401);
    // Revoking twice, or revoking garbage, is fine (RFC 7009 2.2).
    expect((await revoke(a)).status).toBe(200);
    const junk = await gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(a.client_id, a.client_secret) }, body: form({ token: "junk" }) });
    expect(junk.status).toBe(200);
  });

  it("lets an admin client revoke any token, and needs the token parameter", async () => {
    const c = await createClient({ name: "c", roles: ["billing"] });
    const tok = await clientToken(c, "payment:read");
    const res = await gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({ token: tok }) });
    expect(res.status).toBe(200);
    expect(await (await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).json()).toEqual({ active: false });
    const missing = await gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: form({}) });
    expect(missing.status).toBe(400);
  });
});

describe("admin client management", () => {
  it("creates a client with a secret shown once and stored only as a hash", async () => {
    const c = await createClient({ name: "EHR integration", roles: ["clinician"], scopes: ["audit:read"] });
    expect(c.client_id).toMatch(/^cli_/);
    expect(c.client_secret).toMatch(/^cs_[A-Za-z0-9_-]{43}$/);
    expect(c.allowed_scopes).toEqual(["audit:read", "device:read", "phi:read", "phi:write"]);
    const row = await env.DB.prepare("SELECT * FROM clients WHERE id = ?").bind(c.client_id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(c.client_secret);
    expect(row?.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    const admin = await token("admin");
    const read = await gw(`/admin/clients/${c.client_id}`, { headers: { authorization: `Bearer ${admin}` } });
    const view = await read.json<Record<string, unknown>>();
    expect(view).toMatchObject({ client_id: c.client_id, name: "EHR integration", disabled: false });
    expect(view).not.toHaveProperty("client_secret");
    expect(view).not.toHaveProperty("secret_hash");
  });

  it("lists clients with cursor paging", async () => {
    for (let i = 0; i < 3; i++) await createClient({ name: `pager ${i}`, roles: ["tester"] });
    const admin = await token("admin");
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
      const page = await (await gw(`/admin/clients${q}`, { headers: { authorization: `Bearer ${admin}` } })).json<{ data: { client_id: string }[]; next_cursor: string | null }>();
      expect(page.data.length).toBeLessThanOrEqual(2);
      for (const d of page.data) seen.add(d.client_id);
      cursor = page.next_cursor;
    } while (cursor);
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first<{ n: number }>();
    expect(seen.size).toBe(count?.n);
  });

  it("disables a client: no new tokens, and its existing tokens are refused at once", async () => {
    const c = await createClient({ name: "to disable", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    const admin = await token("admin");
    const del = await gw(`/admin/clients/${c.client_id}`, { method: "DELETE", headers: { authorization: `Bearer ${admin}` } });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ disabled: true });
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() })).status).toBe(401);
    expect((await gw("/v1/phi/Patient/x", { headers: { authorization: `Bearer ${tok}` } })).status).toBe(401);
    expect((await gw(`/admin/clients/cli_missing`, { method: "DELETE", headers: { authorization: `Bearer ${admin}` } })).status).toBe(404);
    expect((await gw(`/admin/clients/${env.BOOTSTRAP_CLIENT_ID}`, { method: "DELETE", headers: { authorization: `Bearer ${admin}` } })).status).toBe(409);
  });

  it("validates input and needs the admin scope", async () => {
    const admin = await token("admin");
    const post = (body: string, type = "application/json", tok = admin) =>
      gw("/admin/clients", { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": type }, body });
    expect((await post(JSON.stringify({ name: "x", roles: ["overlord"] }))).status).toBe(400);
    expect((await post(JSON.stringify({ name: "x" }))).status).toBe(400);
    expect((await post(JSON.stringify({ name: "x", scopes: ["phi read"] }))).status).toBe(400);
    expect((await post(JSON.stringify({ name: "x", roles: ["tester"], extra: 1 }))).status).toBe(400);
    expect((await post("{nope")).status).toBe(400);
    expect((await post("name=x", "application/x-www-form-urlencoded")).status).toBe(415);
    const nonAdmin = await token("phi:read");
    expect((await post(JSON.stringify({ name: "x", roles: ["tester"] }), "application/json", nonAdmin)).status).toBe(403);
    expect((await gw("/admin/clients")).status).toBe(401);
    expect((await gw("/admin/clients?limit=1000", { headers: { authorization: `Bearer ${admin}` } })).status).toBe(400);
    expect((await gw(`/admin/clients/cli_none`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(404);
  });

  it("shows the signing key ids, and lists security events for audit:read", async () => {
    const keys = await (await gw("/admin/keys", { headers: { authorization: `Bearer ${await token("admin")}` } })).json();
    expect(keys).toEqual({ alg: "ES256", signing_kid: "test-current", verification_kids: ["test-current", "test-previous"] });
    await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic("cli_nobody_x", "bad") });
    await gw("/v1/phi/Patient/x", { headers: { authorization: "Bearer not-a-token" } });
    const auditor = await token("audit:read");
    const page = await (await gw("/admin/security-events?limit=50", { headers: { authorization: `Bearer ${auditor}` } })).json<{ data: { event_type: string; severity: string; reason: string | null }[] }>();
    const types = page.data.map((e) => e.event_type);
    expect(types).toContain("client_auth_failed");
    expect(types).toContain("token_malformed");
    const filtered = await (await gw("/admin/security-events?event_type=token_malformed", { headers: { authorization: `Bearer ${auditor}` } })).json<{ data: { event_type: string }[] }>();
    expect(filtered.data.every((e) => e.event_type === "token_malformed")).toBe(true);
    const paged = await (await gw("/admin/security-events?limit=1", { headers: { authorization: `Bearer ${auditor}` } })).json<{ next_cursor: number }>();
    const next = await (await gw(`/admin/security-events?limit=1&cursor=${paged.next_cursor}&since=2000-01-01T00:00:00Z`, { headers: { authorization: `Bearer ${auditor}` } })).json<{ data: { id: number }[] }>();
    expect(next.data[0]?.id).toBeLessThan(paged.next_cursor + 1);
    // Never a secret or token in what is stored.
    const all = JSON.stringify((await env.DB.prepare("SELECT * FROM security_events").all()).results);
    expect(all).not.toContain(env.BOOTSTRAP_CLIENT_SECRET);
    expect(all).not.toContain("not-a-token");
  });
});

describe("discovery", () => {
  it("publishes the JWKS (current and previous key, public parts only) and RFC 8414 metadata", async () => {
    const jwks = await (await gw("/.well-known/jwks.json")).json<{ keys: Record<string, string>[] }>();
    expect(jwks.keys.map((k) => k.kid)).toEqual(["test-current", "test-previous"]);
    for (const k of jwks.keys) {
      expect(k).not.toHaveProperty("d");
      expect(k).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    }
    const meta = await (await gw("/.well-known/oauth-authorization-server")).json<Record<string, unknown>>();
    expect(meta).toMatchObject({
      issuer: "http://127.0.0.1:8787",
      token_endpoint: "http://127.0.0.1:8787/oauth/token",
      grant_types_supported: ["client_credentials"],
    });
  });
});
