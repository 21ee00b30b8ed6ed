import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { chainHash } from "../../../shared/audit/hash";
import { latestCheckpoint } from "../../../shared/audit/seal";
import { sealDelayMs } from "../../../shared/audit/sealer";
import { forgetSealerCheckpoint, pendingCount, sealerOf, withoutGuards } from "../../../shared/testing/audit";
import { asInsider, auditRows, call, createPatient, json, patient, PHI_CHAIN, sealAll } from "./helpers";

type Verify = { ok: boolean; records: number; sealed: number; pending: number; complete: boolean; checkpoint: { sealed_up_to: number; head_hash: string; sealed_count: number } | null };
const verify = async () => json<Verify>(await call("/audit/verify"));
const sealer = () => sealerOf(env.AUDIT_SEALER, PHI_CHAIN);

/** The alarm the request's nudge set (the nudge runs in that request's waitUntil, right after its answer). */
async function scheduledAlarm(): Promise<number | null> {
  for (let i = 0; i < 200; i++) {
    const at = await runInDurableObject(sealer(), (_obj, state) => state.storage.getAlarm());
    if (at !== null) return at;
    await new Promise((r) => setTimeout(r, 5));
  }
  return null;
}

describe("sealing: one sealer object per chain, on its alarm, within the delay", () => {
  it("a write nudges the sealer, whose alarm is due within AUDIT_SEAL_DELAY_MS; running it seals the record and records a checkpoint", async () => {
    await sealAll();
    // A quiet sealer, so the alarm seen below is the one this write's nudge sets.
    await runInDurableObject(sealer(), async (_obj, state) => {
      await state.storage.deleteAlarm();
    });
    const delay = sealDelayMs(env.AUDIT_SEAL_DELAY_MS);
    expect(delay).toBe(2000);
    // An isolate nudges at most once per quarter of the delay: let this isolate's last nudge age past that.
    await new Promise((r) => setTimeout(r, delay / 4 + 20));
    const t0 = Date.now();
    const p = await createPatient(patient("Sealable"));
    expect(p.res.status).toBe(201);
    const due = await scheduledAlarm();
    expect(due).not.toBeNull();
    expect(due ?? Infinity).toBeLessThanOrEqual(t0 + delay);
    // Written, durable and protected, not yet linked.
    const pending = await verify();
    expect(pending).toMatchObject({ ok: true, complete: true });
    expect(pending.pending).toBeGreaterThanOrEqual(1);
    const row = (await auditRows()).find((r) => r.action === "create" && r.resource_id === p.id);
    expect(row).toMatchObject({ hash: null, prev_hash: null, sealed_at: null });
    // The alarm fires (run now rather than waited for): everything pending is linked in seq order.
    expect(await runDurableObjectAlarm(sealer())).toBe(true);
    const sealedRow = (await auditRows()).find((r) => r.seq === row?.seq);
    expect(sealedRow?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(sealedRow?.sealed_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const checkpoint = await latestCheckpoint(env.DB, PHI_CHAIN);
    expect(checkpoint?.sealed_up_to).toBeGreaterThanOrEqual(row?.seq ?? Infinity);
    // The object keeps its own copy of the checkpoint, outside the audited database.
    expect(await sealer().checkpoint()).toEqual(checkpoint);
    // It sealed something, so it stays armed for one more run (records committed during this one).
    expect(await runInDurableObject(sealer(), (_obj, state) => state.storage.getAlarm())).not.toBeNull();
    const after = await verify();
    expect(after).toMatchObject({ ok: true, complete: true });
    expect(after.checkpoint?.sealed_up_to).toBe(checkpoint?.sealed_up_to);
    // Verified before its own record was written; that record is the one pending now.
    expect(after.pending).toBe(0);
    expect(await pendingCount(env.DB, PHI_CHAIN)).toBe(1);
  });

  it("an idle sealer stops: a run with nothing to seal and no recent nudge sets no further alarm", async () => {
    await sealAll();
    await runInDurableObject(sealer(), async (_obj, state) => {
      await state.storage.put("nudged_at", 0);
    });
    await sealer().nudge();
    await runInDurableObject(sealer(), async (_obj, state) => {
      await state.storage.put("nudged_at", 0);
    });
    expect(await runDurableObjectAlarm(sealer())).toBe(true);
    expect(await runInDurableObject(sealer(), (_obj, state) => state.storage.getAlarm())).toBeNull();
  });

  it("protects a pending record: no UPDATE, no DELETE, no forged seal; the sealer alone links it", async () => {
    const p = await createPatient(patient("Protected"));
    const row = (await auditRows()).find((r) => r.action === "create" && r.resource_id === p.id);
    const seq = row?.seq ?? 0;
    for (const sql of [
      "UPDATE phi_audit SET actor_sub = 'mallory' WHERE seq = ?",
      "UPDATE phi_audit SET outcome = 'denied' WHERE seq = ?",
      "UPDATE phi_audit SET hash = 'forged' WHERE seq = ?",
      "DELETE FROM phi_audit WHERE seq = ?",
    ]) {
      await expect(env.DB.prepare(sql).bind(seq).run(), sql).rejects.toThrow(/append-only/);
    }
    await expect(
      env.DB.prepare("INSERT INTO phi_audit (prev_hash, hash, sealed_at, at, actor_sub, actor_client, actor_roles, token_id, action, resource_type, resource_id, patient_ids, outcome, reason, purpose_of_use, client_ip, request_id, trace_id) VALUES ('x', 'y', 'z', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '')").run(),
    ).rejects.toThrow(/inserted unsealed/);
    await expect(env.DB.prepare("DELETE FROM phi_audit_checkpoints").run()).rejects.toThrow(/append-only/);
    await sealAll();
    // Sealed once: the seal itself cannot be rewritten either.
    await expect(env.DB.prepare("UPDATE phi_audit SET prev_hash = 'a', hash = 'b', sealed_at = 'c' WHERE seq = ?").bind(seq).run()).rejects.toThrow(/append-only/);
    expect(await verify()).toMatchObject({ ok: true });
  });

  it("detects a deleted newest record, and reordered records, once sealed (an insider drops the triggers first)", async () => {
    for (let i = 0; i < 3; i++) await createPatient(patient(`Order${i}`));
    await sealAll();
    const rows = await auditRows();
    const last = rows.at(-1);
    const [a, b] = rows.slice(-3, -1);
    await asInsider(async () => {
      // Swap two records' contents: each keeps its seq, so each hash breaks.
      await env.DB.prepare("UPDATE phi_audit SET request_id = ? WHERE seq = ?").bind(b?.request_id ?? "", a?.seq ?? 0).run();
      await env.DB.prepare("UPDATE phi_audit SET request_id = ? WHERE seq = ?").bind(a?.request_id ?? "", b?.seq ?? 0).run();
    });
    expect(await verify()).toMatchObject({ ok: false, broken_at: a?.seq, reason: "hash_mismatch" });
    await asInsider(async () => {
      await env.DB.prepare("UPDATE phi_audit SET request_id = ? WHERE seq = ?").bind(a?.request_id ?? "", a?.seq ?? 0).run();
      await env.DB.prepare("UPDATE phi_audit SET request_id = ? WHERE seq = ?").bind(b?.request_id ?? "", b?.seq ?? 0).run();
    });
    await sealAll();
    expect(await verify()).toMatchObject({ ok: true });
    await sealAll();
    // The newest sealed record removed: the links before it still hold; the checkpoint does not.
    const newest = (await auditRows()).at(-1);
    await asInsider(() => env.DB.prepare("DELETE FROM phi_audit WHERE seq = ?").bind(newest?.seq ?? 0).run());
    expect(await verify()).toMatchObject({ ok: false, broken_at: newest?.seq, reason: "gap" });
    expect(last?.seq).toBeLessThan(newest?.seq ?? 0);
    // The sealer now refuses to go on from a chain that lost its checkpoint's record (next test); the tests after
    // this one start from the chain as it stands.
    await forgetSealerCheckpoint(env.AUDIT_SEALER, PHI_CHAIN);
  });

  it("refuses to re-seal records an insider unsealed and edited: they stay pending and verify reports the break", async () => {
    for (let i = 0; i < 3; i++) await createPatient(patient(`Reseal${i}`));
    await sealAll();
    const own = await sealer().checkpoint();
    const head = own?.sealed_up_to ?? 0;
    expect(head).toBeGreaterThan(0);
    // The insider drops the triggers, clears the seal of the two newest sealed records and edits one of them,
    // hoping the sealer links the edited records afresh (and the checkpoints then agree with them).
    await asInsider(() =>
      env.DB.prepare("UPDATE phi_audit SET prev_hash = NULL, hash = NULL, sealed_at = NULL, actor_sub = CASE WHEN seq = ?1 THEN 'someone-else' ELSE actor_sub END WHERE seq > ?1 - 2 AND seq <= ?1")
        .bind(head)
        .run(),
    );
    const before = await latestCheckpoint(env.DB, PHI_CHAIN);
    await sealer().nudge();
    expect(await runDurableObjectAlarm(sealer())).toBe(true);
    // Nothing was linked: the edited records are still pending, neither checkpoint moved, verify does not pass.
    const rows = await auditRows();
    expect(rows.filter((r) => r.seq > head - 2 && r.seq <= head).every((r) => r.hash === null)).toBe(true);
    expect(await latestCheckpoint(env.DB, PHI_CHAIN)).toEqual(before);
    expect(await sealer().checkpoint()).toEqual(own);
    expect((await verify()).ok).toBe(false);
    // Records written after the break wait too (they would be linked onto the edited ones).
    const later = await createPatient(patient("AfterBreak"));
    expect(later.res.status).toBe(201);
    await sealer().nudge();
    await runDurableObjectAlarm(sealer());
    expect((await auditRows()).find((r) => r.action === "create" && r.resource_id === later.id)?.hash).toBeNull();
    // Only an operator's decision (forgetting the sealer's checkpoint) lets it seal the chain as it now stands.
    await forgetSealerCheckpoint(env.AUDIT_SEALER, PHI_CHAIN);
    await sealAll();
    expect(await pendingCount(env.DB, PHI_CHAIN)).toBe(0);
  });
});

describe("the sealer's own checkpoint", () => {
  it("catches a newest record rewritten with its hash recomputed and a matching checkpoint forged in the database", async () => {
    await createPatient(patient("Rewritten"));
    await sealAll();
    const { results } = await env.DB.prepare("SELECT * FROM phi_audit ORDER BY seq DESC LIMIT 2").all<Record<string, string | number | null>>();
    const [newest, before] = results;
    const seq = Number(newest?.seq);
    const { seq: _s, prev_hash: _p, hash: _h, sealed_at: _a, ...data } = newest ?? {};
    const forged = await chainHash(String(before?.hash), seq, { ...data, actor_sub: "someone-else" });
    // An insider rewrites the record, its hash, and the database's checkpoint, consistently.
    await asInsider(() => env.DB.prepare("UPDATE phi_audit SET actor_sub = 'someone-else', hash = ? WHERE seq = ?").bind(forged, seq).run());
    await withoutGuards(env.DB, "phi_audit_checkpoints", () =>
      env.DB.prepare("INSERT INTO phi_audit_checkpoints (sealed_up_to, head_hash, sealed_count, batch, at) SELECT sealed_up_to, ?, sealed_count, batch, at FROM phi_audit_checkpoints ORDER BY id DESC LIMIT 1").bind(forged).run(),
    );
    // The database alone now agrees with itself; the sealer object's copy does not.
    const own = await sealer().checkpoint();
    expect(own?.sealed_up_to).toBe(seq);
    expect(await verify()).toMatchObject({ ok: false, broken_at: seq, reason: "hash_mismatch" });
    await forgetSealerCheckpoint(env.AUDIT_SEALER, PHI_CHAIN);
  });
});

describe("true outcomes, decided in the read's own batch", () => {
  it("records success, not found, gone, denied and invalid as they happened", async () => {
    const live = await createPatient(patient("Outcome"));
    const dead = await createPatient(patient("Deleted"));
    expect((await call(`/Patient/${dead.id}`, { method: "DELETE" })).status).toBe(204);
    const missing = "00000000-0000-4000-8000-0000000000aa";
    const before = (await auditRows()).length;
    expect((await call(`/Patient/${live.id}`)).status).toBe(200);
    expect((await call(`/Patient/${missing}`)).status).toBe(404);
    expect((await call(`/Patient/${dead.id}`)).status).toBe(410);
    expect((await call(`/Patient/${dead.id}/_history/1`)).status).toBe(200);
    expect((await call(`/Patient/${dead.id}/_history/2`)).status).toBe(410);
    expect((await call(`/Patient/${live.id}/_history/9`)).status).toBe(404);
    expect((await call(`/Observation/${missing}`)).status).toBe(404);
    expect((await call(`/Patient/${live.id}`, { as: { scopes: ["phi:write"] } })).status).toBe(403);
    expect((await call("/Patient", { method: "POST", body: { resourceType: "Patient", birthDate: "yesterday" } })).status).toBe(400);
    const rows = (await auditRows()).slice(before);
    expect(rows.map((r) => [r.action, r.resource_id, r.patient_ids, r.outcome, r.reason])).toEqual([
      ["read", live.id, live.id, "success", ""],
      ["read", missing, missing, "failed", "not_found"],
      ["read", dead.id, dead.id, "failed", "gone"],
      ["vread", dead.id, dead.id, "success", ""],
      ["vread", dead.id, dead.id, "failed", "gone"],
      ["vread", live.id, live.id, "failed", "not_found"],
      ["read", missing, "", "failed", "not_found"],
      ["read", live.id, live.id, "denied", "insufficient_scope"],
      ["create", "", "", "failed", "invalid_request"],
    ]);
  });

  it("an Observation read records its subject, which SQL reads from the same snapshot", async () => {
    const subject = await createPatient(patient("Subject"));
    const obs = await call("/Observation", {
      method: "POST",
      body: { resourceType: "Observation", status: "final", code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] }, subject: { reference: `Patient/${subject.id}` }, valueQuantity: { value: 72, unit: "/min" } },
    });
    expect(obs.status).toBe(201);
    const id = String((await json(obs)).id);
    expect((await call(`/Observation/${id}`)).status).toBe(200);
    expect((await auditRows()).at(-1)).toMatchObject({ action: "read", resource_type: "Observation", resource_id: id, patient_ids: subject.id, outcome: "success" });
  });
});
