import { env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, json, patient, type Caller } from "./helpers";

/**
 * PHI shards and D1 sessions (issue 18): a tenant's request uses its shard's database for
 * everything (data, audit record, sealer, verify); two tenants on two shards work side by
 * side; a write's bookmark, sent back, gives read-your-writes.
 */
const SCOPES = ["phi:read", "phi:write", "audit:read"];
const ONE: Caller = { sub: "cli_shard1", tenantId: "ten_shard_one", shard: 1, scopes: SCOPES };
const TWO: Caller = { sub: "cli_shard2", tenantId: "ten_shard_two", shard: 2, scopes: SCOPES };
const SHARDS = [env.DB, env.DB_1, env.DB_2, env.DB_3];

async function rowsOn(db: D1Database, table: string, tenant: string): Promise<number> {
  return (await db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(tenant).first<number>("n")) ?? 0;
}

describe("PHI shards", () => {
  it("a tenant's writes and audit records land only in its shard's database", async () => {
    const res = await call("/Patient", { method: "POST", body: patient("Shardone"), as: ONE });
    expect(res.status).toBe(201);
    const { id } = await json<{ id: string }>(res);
    for (const [i, db] of SHARDS.entries()) {
      const expected = i === 1 ? 1 : 0;
      expect(await rowsOn(db, "resource_versions", "ten_shard_one"), `resource_versions on shard ${i}`).toBe(expected);
      expect((await rowsOn(db, "phi_audit", "ten_shard_one")) > 0, `phi_audit on shard ${i}`).toBe(i === 1);
    }
    expect((await call(`/Patient/${id}`, { as: ONE })).status).toBe(200);
    // The same tenant id with another shard in its principal finds nothing: the shard is the database.
    expect((await call(`/Patient/${id}`, { as: { ...ONE, shard: 3 } })).status).toBe(404);
  });

  it("two tenants on two shards work in parallel, each in its own database", async () => {
    const batch = (who: Caller, family: string) =>
      Array.from({ length: 8 }, (_, i) => call("/Patient", { method: "POST", body: patient(`${family}${i}`), as: who }));
    const results = await Promise.all([...batch(ONE, "Parallelone"), ...batch(TWO, "Paralleltwo")]);
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(201));
    expect(await rowsOn(env.DB_2, "resource_versions", "ten_shard_two")).toBe(8);
    expect(await rowsOn(env.DB_1, "resource_versions", "ten_shard_two")).toBe(0);
    expect(await rowsOn(env.DB, "resource_versions", "ten_shard_two")).toBe(0);
  });

  it("each shard's chain has its own sealer and verifies on its own", async () => {
    await call("/Patient", { method: "POST", body: patient("Sealedtwo"), as: TWO });
    const pending = async () => (await env.DB_2.prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE hash IS NULL").first<number>("n")) ?? 0;
    expect(await pending()).toBeGreaterThan(0);
    // Shard 2's sealer object (named after the shard): nudged by the writes above, it seals DB_2 on its alarm.
    const stub = env.AUDIT_SEALER.get(env.AUDIT_SEALER.idFromName("phi_audit@shard-2"));
    for (let i = 0; i < 20 && (await pending()) > 0; i++) {
      await stub.nudgeShard(2);
      await runDurableObjectAlarm(stub);
    }
    expect(await pending()).toBe(0);
    const v = await json<{ ok: boolean; sealed: number }>(await call("/audit/verify", { as: TWO }));
    expect(v.ok).toBe(true);
    const sealedOnTwo = (await env.DB_2.prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE hash IS NOT NULL").first<number>("n")) ?? 0;
    expect(v.sealed).toBe(sealedOnTwo);
  });

  it("a shard this environment does not declare is a 503, not another tenant's database", async () => {
    const res = await call("/Patient", { as: { ...ONE, shard: 9 } });
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).not.toContain("DB_9");
  });
});

describe("D1 sessions: bookmarks", () => {
  it("a write returns its bookmark; a read that sends it back sees the write", async () => {
    const created = await call("/Patient", { method: "POST", body: patient("Bookmarked"), as: ONE });
    expect(created.status).toBe(201);
    const bookmark = created.headers.get("x-d1-bookmark");
    expect(bookmark).toMatch(/^[0-9a-f]+(-[0-9a-f]+)*$/);
    const { id } = await json<{ id: string }>(created);
    const read = await call(`/Patient/${id}`, { headers: { "x-d1-bookmark": bookmark ?? "" }, as: ONE });
    expect(read.status).toBe(200);
    // The read's own bookmark is at least as recent as the write's (bookmarks order lexicographically).
    const after = read.headers.get("x-d1-bookmark") ?? "";
    expect(after >= (bookmark ?? "")).toBe(true);
  });

  it("a malformed bookmark is a 400 OperationOutcome, recorded, and reads nothing", async () => {
    const res = await call("/Patient?family=Bookmarked", { headers: { "x-d1-bookmark": "not a bookmark; DROP TABLE" }, as: ONE });
    expect(res.status).toBe(400);
    const body = await json<{ resourceType: string; issue: { details?: { text?: string } }[] }>(res);
    expect(body.resourceType).toBe("OperationOutcome");
    const rec = await env.DB_1.prepare("SELECT outcome, reason FROM phi_audit WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1")
      .bind("ten_shard_one")
      .first<{ outcome: string; reason: string }>();
    expect(rec).toEqual({ outcome: "failed", reason: "invalid_bookmark" });
  });
});
