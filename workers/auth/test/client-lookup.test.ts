import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { clientRow, clientStatement, failureRows, failuresStatement, loginRows, loginStatement } from "../src/client-lookup";
import { ClientStore } from "../src/clients";
import { authConfig } from "../src/config";
import { failuresQuery, recordFailure } from "../src/rate-limit";
import { createClient, gw, JSON_CT, token } from "./helpers";

/**
 * The token path's prepared statements (client-lookup.ts) answer exactly what the drizzle
 * queries they stand in for answer, row for row and type for type, on the real database.
 */
const store = () => new ClientStore(env.DB, authConfig(env));

async function both(id: string) {
  const viaDrizzle = await store().lookup(id).get();
  const viaStatement = clientRow(await clientStatement(env.DB, id).run());
  return { viaDrizzle, viaStatement };
}

describe("client lookup without the query builder", () => {
  it("a default-tenant client, another tenant's client, a disabled one and an unknown id: the same rows as drizzle's", async () => {
    const plain = await createClient({ name: "lookup-default-tenant", roles: ["clinician"], scopes: ["phi:read"] });
    const admin = { authorization: `Bearer ${await token("admin")}`, ...JSON_CT };
    const tenant = await (await gw("/admin/tenants", { method: "POST", headers: admin, body: JSON.stringify({ name: "lookup tenant" }) })).json<{ id: string }>();
    const inTenant = await (
      await gw("/admin/clients", { method: "POST", headers: admin, body: JSON.stringify({ name: "lookup-tenant", roles: ["clinician"], tenant_id: tenant.id }) })
    ).json<{ client_id: string }>();
    const disabled = await createClient({ name: "lookup-disabled", roles: ["clinician"] });
    expect((await gw(`/admin/clients/${disabled.client_id}`, { method: "DELETE", headers: admin })).status).toBe(200);

    for (const id of [plain.client_id, inTenant.client_id, disabled.client_id]) {
      const { viaDrizzle, viaStatement } = await both(id);
      expect(viaDrizzle).toBeDefined();
      expect(viaStatement).toStrictEqual(viaDrizzle);
    }
    const t = await both(inTenant.client_id);
    expect(t.viaStatement?.tenantId).toBe(tenant.id);
    expect(typeof t.viaStatement?.tenantShard).toBe("number");
    expect((await both(disabled.client_id)).viaStatement?.disabled).toBe(true);
    expect((await both(plain.client_id)).viaStatement).toMatchObject({ disabled: false, tenantId: "ten_default", tenantShard: 0 });
    expect(await both("cli_doesnotexist")).toEqual({ viaDrizzle: undefined, viaStatement: undefined });
  });

  it("lockout windows: the same rows as drizzle's for one and two keys, none for unknown keys", async () => {
    const now = Math.floor(Date.now() / 1000);
    const policy = { maxFailures: 5, windowSeconds: 60 };
    await recordFailure(env.DB, [{ key: "ip:203.0.113.77", policy }, { key: "client:cli_lookup_x", policy }], now, Number(env.AUTH_FAILURE_WINDOW_SECONDS));
    for (const keys of [["ip:203.0.113.77"], ["ip:203.0.113.77", "client:cli_lookup_x"], ["ip:198.51.100.1", "client:none"]]) {
      const viaDrizzle = await failuresQuery(env.DB, keys);
      const viaStatement = failureRows(await failuresStatement(env.DB, keys).run());
      expect(viaStatement).toStrictEqual(viaDrizzle);
    }
    expect(failureRows(await failuresStatement(env.DB, ["ip:203.0.113.77", "client:cli_lookup_x"]).run())).toHaveLength(2);
  });

  it("the token path's one statement: the same client row and lockout windows as the two statements it replaces", async () => {
    const now = Math.floor(Date.now() / 1000);
    const policy = { maxFailures: 5, windowSeconds: 60 };
    const known = await createClient({ name: "lookup-login", roles: ["clinician"], scopes: ["phi:read"] });
    await recordFailure(env.DB, [{ key: "ip:203.0.113.88", policy }, { key: `client:${known.client_id}`, policy }], now, Number(env.AUTH_FAILURE_WINDOW_SECONDS));
    const byKey = (rows: { key: string }[]) => [...rows].sort((a, b) => a.key.localeCompare(b.key));
    for (const id of [known.client_id, "cli_doesnotexist"]) {
      for (const keys of [["ip:203.0.113.88"], ["ip:203.0.113.88", `client:${id}`], ["ip:198.51.100.2"]]) {
        const one = loginRows(await loginStatement(env.DB, id, keys).run());
        expect(one.row).toStrictEqual(clientRow(await clientStatement(env.DB, id).run()));
        expect(byKey(one.failures)).toStrictEqual(byKey(failureRows(await failuresStatement(env.DB, keys).run())));
      }
    }
    const both = loginRows(await loginStatement(env.DB, known.client_id, ["ip:203.0.113.88", `client:${known.client_id}`]).run());
    expect(both.row?.id).toBe(known.client_id);
    expect(both.failures).toHaveLength(2);
    expect(both.failures.every((f) => typeof f.windowStart === "number" && f.failures === 1)).toBe(true);
    expect(loginRows(await loginStatement(env.DB, "cli_doesnotexist", ["ip:198.51.100.2"]).run())).toStrictEqual({ failures: [], row: undefined });
  });
});
