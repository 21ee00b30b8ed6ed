import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditInsert } from "../../../shared/audit/append";
import { chainHash, GENESIS_HASH } from "../../../shared/audit/hash";
import { sealPending } from "../../../shared/audit/seal";
import { verifyChain } from "../../../shared/audit/verify";
import { PHI_CHAIN } from "./helpers";

/**
 * The audit migrations keep a trail written before sealing moved off the request path: rows chained on
 * append (seq, prev_hash, hash) stay as they were, count as sealed, the first checkpoint covers them, and
 * new records continue the same chain after them.
 */
describe("upgrading an existing chain", () => {
  it("keeps the chained rows sealed, checkpoints them, and continues the chain after them", async () => {
    const db = env.UPGRADE_DB;
    const [first, ...rest] = env.TEST_MIGRATIONS;
    expect(first?.name).toMatch(/^0000_/);
    await applyD1Migrations(db, first ? [first] : []);
    // Three records as the old code wrote them: hash-chained on append, no seal time.
    let prev = GENESIS_HASH;
    for (let seq = 1; seq <= 3; seq++) {
      const data = {
        at: `2026-11-2${seq}T10:00:00.000Z`, actor_sub: "old", actor_client: "c", actor_roles: "clinician", token_id: "t", action: "read",
        resource_type: "Patient", resource_id: "", patient_ids: "", outcome: "success", reason: "", purpose_of_use: "TREAT", client_ip: "1", request_id: `r${seq}`, trace_id: "",
      };
      const hash = await chainHash(prev, seq, data);
      const names = Object.keys(data);
      await db
        .prepare(`INSERT INTO phi_audit (seq, prev_hash, hash, ${names.join(", ")}) VALUES (?, ?, ?${", ?".repeat(names.length)})`)
        .bind(seq, prev, hash, ...names.map((n) => data[n as keyof typeof data]))
        .run();
      prev = hash;
    }
    await applyD1Migrations(db, rest);

    const rows = await db.prepare("SELECT seq, hash, sealed_at FROM phi_audit ORDER BY seq").all<{ seq: number; hash: string; sealed_at: string }>();
    expect(rows.results.map((r) => [r.seq, r.sealed_at])).toEqual([
      [1, "2026-11-21T10:00:00.000Z"],
      [2, "2026-11-22T10:00:00.000Z"],
      [3, "2026-11-23T10:00:00.000Z"],
    ]);
    expect(await verifyChain(db, PHI_CHAIN)).toMatchObject({ ok: true, records: 3, head: prev, sealed: 3, pending: 0, checkpoint: { sealed_up_to: 3, head_hash: prev, sealed_count: 3 } });

    // New records get the next seq from the database and extend the same chain.
    await db.batch([auditInsert(db, "phi_audit", { at: "2026-12-01T00:00:00.000Z", actor_sub: "new", actor_client: "c", actor_roles: "", token_id: "t", action: "read", resource_type: "Patient", resource_id: "", patient_ids: "", outcome: "success", reason: "", purpose_of_use: "TREAT", client_ip: "1", request_id: "r4", trace_id: "" })]);
    expect(await verifyChain(db, PHI_CHAIN)).toMatchObject({ ok: true, sealed: 3, pending: 1 });
    expect(await sealPending(db, PHI_CHAIN, new Date())).toMatchObject({ sealed: 1, checkpoint: { sealed_up_to: 4, sealed_count: 4 } });
    const fourth = await db.prepare("SELECT prev_hash FROM phi_audit WHERE seq = 4").first<{ prev_hash: string }>();
    expect(fourth?.prev_hash).toBe(prev);
    expect(await verifyChain(db, PHI_CHAIN)).toMatchObject({ ok: true, records: 4, sealed: 4, pending: 0, complete: true });
    // And the old rows are now under the triggers' protection too.
    await expect(db.prepare("DELETE FROM phi_audit WHERE seq = 1").run()).rejects.toThrow(/append-only/);
  });
});
