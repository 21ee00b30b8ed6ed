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
