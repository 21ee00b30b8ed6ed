import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { JWT_BEARER } from "../src/tokens/client-assertion";
import { assertion, jwtClient, testKey } from "./assertion-helpers";
import { countD1 } from "./d1-count";
import { basic, BASE, bootstrapAuth, clientToken, createClient, form, FORM, randomIp, token } from "./helpers";

/**
 * The revocation view through the gateway's own fetch handler, on the real clock: a change
 * made by another isolate (its row written straight into D1) is polled for until the
 * gateway refuses it; no timing is asserted, only that it happens and what the answers
 * are. Bounds are shortened for these requests (an env with other vars, as another
 * deployment would have) so the polls are short.
 */
const fast: Env = { ...env, REVOCATION_REFRESH_MS: "400", REVOCATION_MAX_STALENESS_MS: "2000" } as unknown as Env;
const fastDown: Env = { ...fast, DB: env.FAULT_DB };

async function serve(e: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const handler = worker as Required<Pick<ExportedHandler<Env>, "fetch">>;
  const res = await handler.fetch(new Request(BASE + path, init) as Request<unknown, IncomingRequestCfProperties>, e, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

const read = (e: Env, tok: string) => serve(e, "/v1/phi/Patient/no-such-patient", { headers: { authorization: `Bearer ${tok}` } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the status is one of `until`; every answer before it must be one of `meanwhile`. */
async function pollUntil(send: () => Promise<Response>, until: number, meanwhile: number[]): Promise<Response> {
  for (let i = 0; i < 400; i++) {
    const res = await send();
    if (res.status === until) return res;
    expect(meanwhile, `answer before ${until}`).toContain(res.status);
    await sleep(25);
  }
  throw new Error(`never answered ${until}`);
}

function claimsOf(tok: string): { jti: string; exp: number; client_id: string } {
  return JSON.parse(atob((tok.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/"))) as { jti: string; exp: number; client_id: string };
}

describe("gateway: changes made in another isolate take effect within the bound", () => {
  it("a token revoked elsewhere: 404 from phi (token accepted) until the view refreshes, then 401 on every request", async () => {
    const c = await createClient({ name: "gw-revoke", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    expect((await read(fast, tok)).status).toBe(404);
    const { jti, exp, client_id } = claimsOf(tok);
    await env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, client_id, exp, new Date().toISOString(), "another-isolate")
      .run();
    const refused = await pollUntil(() => read(fast, tok), 401, [404]);
    expect(refused.headers.get("www-authenticate")).toContain('error="invalid_token"');
    for (let i = 0; i < 5; i++) expect((await read(fast, tok)).status).toBe(401);
  });

  it("a client disabled elsewhere: its token is refused, another client's is not", async () => {
    const c = await createClient({ name: "gw-disable", roles: ["clinician"] });
    const other = await clientToken(await createClient({ name: "gw-bystander", roles: ["clinician"] }), "phi:read");
    const tok = await clientToken(c, "phi:read");
    expect((await read(fast, tok)).status).toBe(404);
    await env.DB.prepare("UPDATE clients SET disabled = 1, disabled_at = ? WHERE id = ?").bind(new Date().toISOString(), c.client_id).run();
    await pollUntil(() => read(fast, tok), 401, [404]);
    expect((await read(fast, other)).status).toBe(404);
  });

  it("D1 down longer than the hard bound: answered from the view meanwhile, then 503 problem+json with Retry-After, never access", async () => {
    const tok = await clientToken(await createClient({ name: "gw-d1-down", roles: ["clinician"] }), "phi:read");
    expect((await read(fast, tok)).status).toBe(404);
    const res = await pollUntil(() => read(fastDown, tok), 503, [404]);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.headers.get("retry-after")).toBe("1");
    const body = await res.json<Record<string, unknown>>();
    expect(body).toMatchObject({ status: 503, code: "revocation_state_unavailable" });
    expect(JSON.stringify(body)).not.toMatch(/SELECT|revoked_tokens|SQLITE|D1_/);
    // Still down: still refused (fail closed), whichever token.
    for (let i = 0; i < 5; i++) expect((await read(fastDown, tok)).status).toBe(503);
    // D1 back: answered again.
    await pollUntil(() => read(fast, tok), 404, [503]);
  });
});

describe("the bootstrap client retired by configuration", () => {
  const noSecret = { ...env, BOOTSTRAP_CLIENT_SECRET: undefined } as unknown as Env;
  const neither = { ...env, BOOTSTRAP_CLIENT_SECRET: undefined, BOOTSTRAP_CLIENT_ID: undefined } as unknown as Env;
  const bearer = (tok: string) => ({ headers: { authorization: `Bearer ${tok}` } });
  const introspect = async (e: Env, tok: string) => (await serve(e, "/introspect", bearer(tok))).json<{ active: boolean }>();

  it("its secret removed, its id kept: a token already issued is refused at once like a disabled client's, on both paths", async () => {
    const boot = await token("admin phi:read");
    expect((await serve(env, "/admin/clients", bearer(boot))).status).toBe(200);
    expect(await introspect(env, boot)).toMatchObject({ active: true });
    // A D1 client disabled, for the answer to compare with.
    const c = await createClient({ name: "gw-disabled-peer", roles: ["clinician"] });
    const disabledTok = await clientToken(c, "phi:read");
    await env.DB.prepare("UPDATE clients SET disabled = 1, disabled_at = ? WHERE id = ?").bind(new Date().toISOString(), c.client_id).run();
    const disabled = await pollUntil(() => read(fast, disabledTok), 401, [404]);

    for (const path of ["/admin/clients", "/v1/phi/Patient/no-such-patient"]) {
      const res = await serve(noSecret, path, bearer(boot));
      expect(res.status, path).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe(disabled.headers.get("www-authenticate"));
      const body = await res.json<Record<string, unknown>>();
      const peer = await (await read(fast, disabledTok)).json<Record<string, unknown>>();
      expect({ code: body.code, status: body.status, detail: body.detail }).toEqual({ code: peer.code, status: peer.status, detail: peer.detail });
      expect(JSON.stringify(body)).not.toContain(boot);
    }
    // Introspection (authoritative, D1) agrees: inactive, and nothing else said.
    expect(await introspect(noSecret, boot)).toEqual({ active: false });
    const admin = await createClient({ name: "gw-introspector", roles: ["admin"] });
    const rfc7662 = await serve(noSecret, "/oauth/introspect", { method: "POST", headers: { ...FORM, authorization: basic(admin.client_id, admin.client_secret) }, body: form({ token: boot }) });
    expect(await rfc7662.json()).toEqual({ active: false });
    // No new token either.
    const again = await serve(noSecret, "/oauth/token", { method: "POST", headers: { ...FORM, "cf-connecting-ip": randomIp(), authorization: bootstrapAuth() }, body: form({ grant_type: "client_credentials" }) });
    expect(again.status).toBe(401);
    // The same token with the secret configured again is accepted again: nothing was stored.
    expect((await serve(env, "/admin/clients", bearer(boot))).status).toBe(200);
  });

  it("id and secret both removed (README): introspection calls its tokens inactive; the gateway accepts them until expiry", async () => {
    // Documented limit: the id is then unknown, and the gateway's view holds disabled clients only. Remove the
    // secret first and the id after ACCESS_TOKEN_TTL_SECONDS, or revoke the tokens, or rotate the signing key.
    const boot = await token("admin");
    expect(await introspect(neither, boot)).toEqual({ active: false });
    expect((await serve(neither, "/admin/clients", bearer(boot))).status).toBe(200);
    const { jti } = claimsOf(boot);
    // A platform admin (no tenant) may revoke any token, the bootstrap client's too.
    const admin = await createClient({ name: "gw-revoker", roles: ["admin"], tenant_id: null } as Parameters<typeof createClient>[0]);
    const revoked = await serve(neither, "/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(admin.client_id, admin.client_secret) }, body: form({ token: boot }) });
    expect(revoked.status).toBe(200);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM revoked_tokens WHERE jti = ?").bind(jti).first<number>("n")).toBe(1);
    expect((await serve(neither, "/admin/clients", bearer(boot))).status).toBe(401);
  });
});

describe("D1 round trips, counted on the real binding", () => {
  it("a gateway-verified request makes none while the view is fresh", async () => {
    const tok = await token("phi:read");
    expect((await read(env, tok)).status).toBe(404);
    const counted = countD1(env.DB);
    // Long bounds for these requests, so that none of them finds the view due whatever the
    // machine's speed: what is counted is the request path alone, not a background refresh.
    const e = { ...env, DB: counted.db, REVOCATION_REFRESH_MS: "600000", REVOCATION_MAX_STALENESS_MS: "1200000" } as unknown as Env;
    for (let i = 0; i < 10; i++) expect((await read(e, tok)).status).toBe(404);
    expect(counted.roundTrips()).toBe(0);
  });

  it("token issuance for a valid client makes one (lockout state and client in one batch), also for the bootstrap client", async () => {
    const c = await createClient({ name: "gw-issue", roles: ["clinician"] });
    for (const authorization of [basic(c.client_id, c.client_secret), bootstrapAuth()]) {
      const counted = countD1(env.DB);
      const res = await serve({ ...env, DB: counted.db }, "/oauth/token", {
        method: "POST",
        headers: { ...FORM, authorization, "cf-connecting-ip": randomIp() },
        body: form({ grant_type: "client_credentials", scope: "phi:read" }),
      });
      expect(res.status).toBe(200);
      expect(counted.roundTrips()).toBe(1);
    }
  });

  it("token issuance for a private_key_jwt client makes one too (lockout state, client row and the jti's reservation in one batch)", async () => {
    const key = await testKey("ES384");
    const id = await jwtClient([key]);
    const counted = countD1(env.DB);
    const res = await serve({ ...env, DB: counted.db }, "/oauth/token", {
      method: "POST",
      headers: { ...FORM, "cf-connecting-ip": randomIp() },
      body: form({ grant_type: "client_credentials", scope: "phi:read", client_assertion_type: JWT_BEARER, client_assertion: await assertion(id, key) }),
    });
    expect(res.status).toBe(200);
    expect(counted.roundTrips()).toBe(1);
  });
});
