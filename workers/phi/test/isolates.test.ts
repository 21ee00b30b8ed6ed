import { env, runInDurableObject, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { pendingCount, sealerOf } from "../../../shared/testing/audit";
import { auditRows, call, json, patient, PHI_CHAIN, sealAll } from "./helpers";

/**
 * Several isolates of phi (four worker instances, each its own isolate, built from the real bundle) on ONE
 * D1 database and ONE sealer object, as a busy deployment runs: appends never contend for a chain head,
 * so concurrent writers across instances all succeed at once, each access leaves exactly one record, and
 * the sealer links them all into one chain that verifies.
 */
describe("many isolates, one chain", () => {
  it("48 concurrent writers and 48 readers across 4 instances: no 5xx, one record per access, all sealed and verified", { timeout: 120_000 }, async () => {
    const instances = [SELF, env.ISO_1, env.ISO_2, env.ISO_3];
    const before = (await auditRows()).length;
    const creates = await Promise.all(
      Array.from({ length: 48 }, (_, i) => call("/Patient", { method: "POST", body: patient(`Isolate${i}`), via: instances[i % 4] })),
    );
    expect(creates.map((r) => r.status)).toEqual(creates.map(() => 201));
    const ids = await Promise.all(creates.map(async (r) => String((await json(r)).id)));
    const requestIds = creates.map((r) => r.headers.get("x-request-id"));
    // Reads of those patients, each from another instance than the one that wrote it.
    const reads = await Promise.all(ids.map((id, i) => call(`/Patient/${id}`, { via: instances[(i + 1) % 4] })));
    expect(reads.map((r) => r.status)).toEqual(reads.map(() => 200));
    for (const r of reads) requestIds.push(r.headers.get("x-request-id"));

    const rows = (await auditRows()).slice(before);
    // Exactly one record per access, none lost, none doubled: no append retried or forked.
    expect(rows).toHaveLength(96);
    expect(new Set(rows.map((r) => r.request_id))).toEqual(new Set(requestIds));
    expect(rows.filter((r) => r.action === "create" && r.outcome === "success").map((r) => r.resource_id).sort()).toEqual([...ids].sort());
    expect(rows.filter((r) => r.action === "read" && r.outcome === "success").map((r) => r.resource_id).sort()).toEqual([...ids].sort());
    // The database assigned the order: seqs strictly increase with no gap.
    const seqs = rows.map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 96 }, (_, i) => (seqs[0] ?? 0) + i));

    // Every instance nudged the same sealer; its alarm (run now) links them all.
    await sealAll();
    expect(await pendingCount(env.DB, PHI_CHAIN)).toBe(0);
    const verdict = await verifyChain(env.DB, PHI_CHAIN);
    expect(verdict).toMatchObject({ ok: true, complete: true, pending: 0 });
    expect(verdict.records).toBe(verdict.sealed);
    expect(verdict.checkpoint?.sealed_up_to).toBe(seqs.at(-1));
    // And the chain verifies through any instance.
    expect(await json(await call("/audit/verify", { via: env.ISO_2 }))).toMatchObject({ ok: true, complete: true });
  });

  it("another instance's write nudges the one sealer (the object in this worker's namespace), not one of its own", async () => {
    const sealer = sealerOf(env.AUDIT_SEALER, PHI_CHAIN);
    await runInDurableObject(sealer, async (_obj, state) => {
      await state.storage.deleteAlarm();
      await state.storage.put("nudged_at", 0);
    });
    // That instance nudges at most once per quarter of the delay: let its last nudge age past that.
    await new Promise((r) => setTimeout(r, 520));
    const t0 = Date.now();
    expect((await call("/Patient", { method: "POST", body: patient("Elsewhere"), via: env.ISO_3 })).status).toBe(201);
    let nudged = 0;
    for (let i = 0; i < 200 && nudged < t0; i++) {
      nudged = await runInDurableObject(sealer, async (_obj, state) => (await state.storage.get<number>("nudged_at")) ?? 0);
      if (nudged < t0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(nudged).toBeGreaterThanOrEqual(t0);
    expect(await runInDurableObject(sealer, (_obj, state) => state.storage.getAlarm())).not.toBeNull();
  });
});
