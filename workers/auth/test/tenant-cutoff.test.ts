import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { decodeJwt } from "jose";
import { describe, expect, it } from "vitest";
import { checkGatewayToken } from "../src/bearer";
import { refusalOf } from "../src/revocation/decide";
import { TenantStore } from "../src/tenants";
import { basic, clientToken, FORM, form, gw, JSON_CT, randomIp, token, withBearer, type CreatedClient } from "./helpers";

/**
 * A tenant's token cut-off (`tenants.tokens_not_before`): every token of the tenant issued before
 * it is revoked, what a shard move needs (its older tokens name the old shard) and what offboarding
 * also sets. Refused through the gateway's revocation view, as disabled clients are.
 */
const REFRESH = Number(env.REVOCATION_REFRESH_MS);
const MAX = Number(env.REVOCATION_MAX_STALENESS_MS);
let clock = Date.now();

async function check(tok: string, at: number): Promise<string> {
  const ctx = createExecutionContext();
  const r = await checkGatewayToken(env, ctx, tok, at);
  await waitOnExecutionContext(ctx);
  return r.ok ? "ok" : r.reason;
}

async function tenantClient(name: string): Promise<{ id: string; client: CreatedClient }> {
  const admin = { authorization: `Bearer ${await token("admin")}`, ...JSON_CT };
  const t = await (await gw("/admin/tenants", { method: "POST", headers: admin, body: JSON.stringify({ name }) })).json<{ id: string }>();
  const res = await gw("/admin/clients", { method: "POST", headers: admin, body: JSON.stringify({ name: "c", roles: ["clinician"], tenant_id: t.id }) });
  return { id: t.id, client: await res.json<CreatedClient>() };
}

describe("tenant token cut-off", () => {
  it("refusalOf (pure): a tenant's token issued before its cut-off is revoked; later ones, other tenants and platform tokens are not", () => {
    const data = { revoked: new Map<string, number>(), disabled: new Map<string, number>(), tenantCutoff: new Map([["ten_moved", 1000]]) };
    expect(refusalOf(data, { jti: "j", clientId: "c", tenantId: "ten_moved", iat: 999 }, false)).toEqual({ refused: true, reason: "revoked" });
    expect(refusalOf(data, { jti: "j", clientId: "c", tenantId: "ten_moved", iat: 1000 }, false)).toEqual({ refused: false });
    expect(refusalOf(data, { jti: "j", clientId: "c", tenantId: "ten_other", iat: 1 }, false)).toEqual({ refused: false });
    expect(refusalOf(data, { jti: "j", clientId: "c", iat: 1 }, false)).toEqual({ refused: false });
    expect(refusalOf({ revoked: new Map(), disabled: new Map() }, { jti: "j", clientId: "c", tenantId: "ten_moved", iat: 1 }, false)).toEqual({ refused: false });
  });

  it("a cut-off written by another isolate is refused within the bound, from memory until the view refreshes", async () => {
    const moved = await tenantClient("Cutoff Moved Clinic");
    const kept = await tenantClient("Cutoff Kept Clinic");
    const tokMoved = await clientToken(moved.client, "phi:read");
    const tokKept = await clientToken(kept.client, "phi:read");
    clock += MAX + 1000;
    expect(await check(tokMoved, clock)).toBe("ok");
    const t = clock;
    const iatMoved = decodeJwt(tokMoved).iat ?? 0;
    const iatKept = decodeJwt(tokKept).iat ?? 0;
    // Another isolate moved the tenant: its cut-off is after the token. The other tenant's cut-off is not after its token.
    await env.DB.batch([
      env.DB.prepare("UPDATE tenants SET tokens_not_before = ? WHERE id = ?").bind(iatMoved + 1, moved.id),
      env.DB.prepare("UPDATE tenants SET tokens_not_before = ? WHERE id = ?").bind(iatKept, kept.id),
    ]);
    expect(await check(tokMoved, t + 1)).toBe("ok");
    clock = t + REFRESH + 1;
    expect(await check(tokMoved, clock)).toBe("revoked");
    expect(await check(tokKept, clock)).toBe("ok");
  });

  it("revokeTokens: the tenant's tokens are refused at once here and by introspection; a token issued after the cut-off works", async () => {
    const moved = await tenantClient("Cutoff Gateway Clinic");
    const other = await tenantClient("Cutoff Bystander Clinic");
    const tok = await clientToken(moved.client, "phi:read");
    const tokOther = await clientToken(other.client, "phi:read");
    expect((await withBearer(tok)).status).not.toBe(401);
    const cutoff = await new TenantStore(env.DB).revokeTokens(moved.id, Date.now());
    expect(cutoff).toBe(Math.floor(Date.now() / 1000) + 1);
    expect(await new TenantStore(env.DB).revokeTokens("ten_nothing", Date.now())).toBeUndefined();
    expect((await withBearer(tok)).status).toBe(401);
    expect((await withBearer(tokOther)).status).not.toBe(401);
    const intro = await gw("/oauth/introspect", {
      method: "POST",
      headers: { ...FORM, authorization: basic(env.BOOTSTRAP_CLIENT_ID, env.BOOTSTRAP_CLIENT_SECRET), "cf-connecting-ip": randomIp() },
      body: form({ token: tok }),
    });
    expect(await intro.json()).toEqual({ active: false });
    // The client itself is not disabled: a token issued once the cut-off second has passed is accepted.
    let fresh = await clientToken(moved.client, "phi:read");
    for (let i = 0; i < 40 && (decodeJwt(fresh).iat ?? 0) < (cutoff ?? 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      fresh = await clientToken(moved.client, "phi:read");
    }
    expect((await withBearer(fresh)).status).not.toBe(401);
  });
});
