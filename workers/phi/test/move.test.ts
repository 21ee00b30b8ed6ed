import { env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { sealerName } from "../src/audit/sealer";
import { dataTables, ROWS_PER_BATCH, BATCHES_PER_CALL } from "../src/move/tables";
import { call, json, patient, PHI_CHAIN, type Caller } from "./helpers";

/**
 * phi's side of a tenant move (src/move/), step by step as auth drives it, against the real shard
 * databases: what moves (every tenant_id table, found in sqlite_master), the audit copy keyed by
 * origin (a move there and back copies each record once), both chains verifying, and refusals.
 */
const SHARDS = [env.DB, env.DB_1, env.DB_2, env.DB_3];
const PLATFORM: Caller = { sub: "cli_platform", tenantId: "ten_platform", shard: 0, scopes: ["admin"], roles: ["admin"] };
const TENANT = "ten_mover";
const on = (shard: number): Caller => ({ sub: "cli_mover", tenantId: TENANT, shard, scopes: ["phi:read", "phi:write", "audit:read"] });

function db(n: number): D1Database {
  const d = SHARDS[n];
  if (!d) throw new Error(`no shard ${n}`);
  return d;
}

type Cursor = { table: number; after: number } | null;

function step(body: Record<string, unknown>, as: Caller = PLATFORM, tenant = TENANT): Promise<Response> {
  return call(`https://phi.internal/internal/tenants/${tenant}/move`, { method: "POST", body, contentType: "application/json", as });
}

/** Runs a cursor-driven step to its end, as auth does; the per-table counts summed, and how many calls it took. */
async function run(name: string, from: number, to: number): Promise<{ counts: Record<string, number>; calls: number }> {
  const counts: Record<string, number> = {};
  let cursor: Cursor = null;
  let calls = 0;
  do {
    const res = await step({ step: name, from, to, cursor });
    expect(res.status, `${name} ${await res.clone().text()}`).toBe(200);
    const out = await json<{ cursor: Cursor; copied?: Record<string, number>; removed?: Record<string, number> }>(res);
    for (const [k, v] of Object.entries(out.copied ?? out.removed ?? {})) counts[k] = (counts[k] ?? 0) + v;
    cursor = out.cursor;
    calls++;
  } while (cursor !== null);
  return { counts, calls };
}

async function moveAll(from: number, to: number): Promise<{ counts: Record<string, number>; copyCalls: number }> {
  await run("clear", from, to);
  const { counts, calls } = await run("copy", from, to);
  expect((await step({ step: "verify", from, to })).status).toBe(200);
  await run("purge", from, to);
  return { counts, copyCalls: calls };
}

async function seal(n: number): Promise<void> {
  const stub = env.AUDIT_SEALER.get(env.AUDIT_SEALER.idFromName(sealerName(n)));
  for (let i = 0; i < 50; i++) {
    if (((await db(n).prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE hash IS NULL").first<number>("n")) ?? 0) === 0) return;
    await stub.nudgeShard(n);
    await runDurableObjectAlarm(stub);
  }
}

const rows = async (d: D1Database, table: string) => (await d.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(TENANT).first<number>("n")) ?? 0;

describe("moving a tenant between shards (internal steps)", () => {
  it("moves every tenant_id table (one added later too) in bounded calls, there and back, each audit record copied once, both chains intact", async () => {
    // A table a later migration could add (per-tenant keys, say): found by its tenant_id column, moved with no code change.
    for (const d of SHARDS) await d.exec("CREATE TABLE IF NOT EXISTS move_test_keys (tenant_id TEXT NOT NULL, kid TEXT NOT NULL, wrapped TEXT NOT NULL)");
    expect((await dataTables(db(1))).map((t) => t.name)).toEqual(["move_test_keys", "resource_versions", "search_index", "tenant_keys"]);
    const many = ROWS_PER_BATCH * BATCHES_PER_CALL + 50;
    await db(1).exec(`INSERT INTO move_test_keys (tenant_id, kid, wrapped) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${many}) SELECT '${TENANT}', 'k' || i, 'w' || i FROM n`);
    const created = await call("/Patient", { method: "POST", body: patient("Mover"), as: on(1) });
    expect(created.status).toBe(201);
    const { id } = await json<{ id: string }>(created);
    expect((await call(`/Patient/${id}`, { method: "PUT", body: { ...patient("Mover", "Bea"), id }, as: on(1) })).status).toBe(200);
    expect((await call(`/Patient/${id}`, { as: on(1) })).status).toBe(200);
    const audited = await rows(db(1), "phi_audit");

    const out = await moveAll(1, 2);
    // The tenant's wrapped data key moves with the bodies it seals (per-tenant keys, migration 0006).
    expect(out.counts).toMatchObject({ move_test_keys: many, resource_versions: 2, tenant_keys: 1, phi_audit: audited });
    // More rows than one call copies: the copy went on over several bounded calls.
    expect(out.copyCalls).toBeGreaterThanOrEqual(2);
    expect(await rows(db(1), "move_test_keys")).toBe(0);
    expect(await rows(db(1), "resource_versions")).toBe(0);
    expect(await rows(db(1), "search_index")).toBe(0);
    expect(await rows(db(1), "tenant_keys")).toBe(0);
    expect(await rows(db(2), "move_test_keys")).toBe(many);
    // Readable on its new shard, with every version.
    expect((await call(`/Patient/${id}/_history/1`, { as: on(2) })).status).toBe(200);
    expect((await call(`/Patient/${id}/_history/2`, { as: on(2) })).status).toBe(200);
    expect((await call(`/Patient?family=Mover`, { as: on(2) })).status).toBe(200);

    // And back: shard 1 still holds its own records (never deleted); only those written on 2 come over.
    const onTwo = await rows(db(2), "phi_audit");
    await moveAll(2, 1);
    const keys = (await db(1).prepare("SELECT COALESCE(origin, '1:' || seq) AS k FROM phi_audit WHERE tenant_id = ?").bind(TENANT).all<{ k: string }>()).results.map((r) => r.k);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.filter((k) => k.startsWith("1:")).length).toBeGreaterThan(audited);
    expect(keys.filter((k) => k.startsWith("2:")).length).toBe(onTwo - audited);
    expect((await call(`/Patient/${id}/_history/2`, { as: on(1) })).status).toBe(200);
    expect(await rows(db(2), "resource_versions")).toBe(0);

    for (const n of [1, 2]) {
      await seal(n);
      const v = await verifyChain(db(n), PHI_CHAIN);
      expect(v.ok && v.complete && v.pending === 0, `shard ${n}`).toBe(true);
    }
    // The tenant's trail on shard 1 names both moves; the last move-out stays on the shard it left (written after the copy).
    const moves = async (n: number) =>
      (await json<{ data: { action: string; reason: string }[] }>(await call("/audit?limit=500", { as: on(n) }))).data
        .filter((r) => r.action.startsWith("tenant-move"))
        .map((r) => `${r.action} ${r.reason}`);
    expect(await moves(1)).toEqual(["tenant-move-out to-shard-2", "tenant-move-in from-shard-1", "tenant-move-in from-shard-2"]);
    expect(await moves(2)).toEqual(["tenant-move-in from-shard-1", "tenant-move-out to-shard-1"]);
    // A copied record's origin is sealed into the chain: changing it is refused by the guard trigger.
    await expect(db(1).prepare("UPDATE phi_audit SET origin = '3:1' WHERE origin IS NOT NULL").run()).rejects.toThrow(/append-only/);
  });

  it("verify refuses a destination that lacks a row, and discard removes the copy", async () => {
    await call("/Patient", { method: "POST", body: patient("Partial"), as: on(1) });
    await run("clear", 1, 3);
    await run("copy", 1, 3);
    await db(3).prepare("DELETE FROM search_index WHERE rowid IN (SELECT rowid FROM search_index WHERE tenant_id = ? LIMIT 1)").bind(TENANT).run();
    const v = await step({ step: "verify", from: 1, to: 3 });
    expect(v.status).toBe(409);
    expect(JSON.stringify(await v.json())).toContain("move_not_verified");
    await run("discard", 1, 3);
    for (const t of ["resource_versions", "search_index", "move_test_keys"]) expect(await rows(db(3), t), t).toBe(0);
    expect(await rows(db(1), "resource_versions")).toBeGreaterThan(0);
  });

  it("refuses anyone but a platform admin, and bad steps, shards or ids", async () => {
    const body = { step: "check", from: 1, to: 2 };
    const cases: [string, Promise<Response>, number][] = [
      ["tenant principal", step(body, { ...on(1), scopes: ["admin"] }), 403],
      ["platform without admin", step(body, { ...PLATFORM, scopes: ["phi:read"] }), 403],
      ["same shard", step({ step: "check", from: 1, to: 1 }), 400],
      ["undeclared shard", step({ step: "check", from: 1, to: 9 }), 400],
      ["unknown step", step({ step: "drop", from: 1, to: 2 }), 400],
      ["extra field", step({ ...body, all: true }), 400],
      ["bad cursor", step({ ...body, cursor: { table: -1, after: 0 } }), 400],
      ["platform tenant", step(body, PLATFORM, "ten_platform"), 404],
      ["malformed tenant", step(body, PLATFORM, "nope"), 404],
    ];
    for (const [name, res, status] of cases) {
      const r = await res;
      expect(r.status, name).toBe(status);
      expect(r.headers.get("content-type"), name).toContain("application/problem+json");
    }
    const bare = await SELF.fetch("https://phi.internal/internal/tenants/ten_mover/move", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(bare.status).toBe(401);
  });
});
