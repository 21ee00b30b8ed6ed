import { applyD1Migrations, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditInsert } from "../../../shared/audit/append";
import { listStatement } from "../../../shared/audit/list";
import { sealPending } from "../../../shared/audit/seal";
import { verifyChain } from "../../../shared/audit/verify";
import { auditListOptions } from "../src/store/audit-query";
import { call, createPatient, json, patient, PHI_CHAIN, sealAll } from "./helpers";

/**
 * The accounting of disclosures by patient (`GET /v1/phi/audit?patient=`) reads sealed records through
 * phi_audit_patients, which a trigger fills as the sealer seals each record, and scans only the pending tail:
 * the same records as a scan of the whole trail, in the same order, sealed or not, at the cost of the patient's
 * own records.
 */
interface Page {
  data: { seq: number; action: string; patient_ids: string }[];
  next_cursor: number | null;
}

/** Every record of the tenant naming `id`, by a scan of the whole trail (what the listing must equal). */
async function naming(id: string): Promise<number[]> {
  const { results } = await env.DB.prepare("SELECT seq FROM phi_audit WHERE tenant_id = 'ten_default' AND instr(',' || patient_ids || ',', ',' || ? || ',') > 0 ORDER BY seq")
    .bind(id)
    .all<{ seq: number }>();
  return results.map((r) => r.seq);
}

/** The whole listing for `id`, page by page (`limit` per page). */
async function listed(id: string, limit: number): Promise<number[]> {
  const seqs: number[] = [];
  let cursor: number | null = null;
  for (let i = 0; i < 100; i++) {
    const page: Page = await json<Page>(await call(`/audit?patient=${id}&limit=${limit}${cursor === null ? "" : `&cursor=${cursor}`}`));
    seqs.push(...page.data.map((r) => r.seq));
    cursor = page.next_cursor;
    if (cursor === null) return seqs;
  }
  throw new Error("too many pages");
}

async function links(id: string): Promise<number[]> {
  const { results } = await env.DB.prepare("SELECT seq FROM phi_audit_patients WHERE tenant_id = 'ten_default' AND patient_id = ? ORDER BY seq").bind(id).all<{ seq: number }>();
  return results.map((r) => r.seq);
}

describe("the audit trail by patient", () => {
  it("lists the same records as a scan of the whole trail, pending, sealed and across the boundary, page by page", async () => {
    const a = await createPatient(patient("LinkedPair", "Alpha"));
    const b = await createPatient(patient("LinkedPair", "Beta"));
    for (let i = 0; i < 3; i++) expect((await call(`/Patient/${a.id}`)).status).toBe(200);
    // A search naming both patients in one record.
    const both = await call("/Patient?family=LinkedPair");
    expect((await json<{ total: number }>(both)).total).toBe(2);
    const pending = await naming(a.id);
    expect(pending.length).toBeGreaterThanOrEqual(5);
    expect(await listed(a.id, 2)).toEqual(pending);

    // Sealed: each record's links are there, one per patient it names, and the listing is unchanged.
    await sealAll();
    expect(await links(a.id)).toEqual(pending);
    expect(await links(b.id)).toEqual(await naming(b.id));
    expect(await listed(a.id, 2)).toEqual(pending);

    // More records, pending behind sealed ones: one listing across both, in seq order.
    expect((await call(`/Patient/${a.id}`)).status).toBe(200);
    expect((await call(`/Patient/${b.id}`)).status).toBe(200);
    const mixed = await naming(a.id);
    expect(mixed.length).toBe(pending.length + 1);
    expect(await listed(a.id, 3)).toEqual(mixed);
    expect(await listed(b.id, 1)).toEqual(await naming(b.id));
    await sealAll();
    expect(await links(a.id)).toEqual(mixed);
    expect(await verifyChain(env.DB, PHI_CHAIN)).toMatchObject({ ok: true });
  });

  it("the links are append-only, like the trail", async () => {
    const p = await createPatient(patient("LinkedGuard"));
    await sealAll();
    expect((await links(p.id)).length).toBe(1);
    await expect(env.DB.prepare("DELETE FROM phi_audit_patients WHERE patient_id = ?").bind(p.id).run()).rejects.toThrow(/append-only/);
    await expect(env.DB.prepare("UPDATE phi_audit_patients SET patient_id = 'x' WHERE patient_id = ?").bind(p.id).run()).rejects.toThrow(/append-only/);
    expect((await links(p.id)).length).toBe(1);
  });

  it("the listing reads the patient's links and the pending index, never the whole trail", async () => {
    const q = listStatement("phi_audit", auditListOptions("ten_default", { patient: "00000000-0000-4000-8000-000000000000", after: 0, limit: 50 }));
    const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
      .bind(...q.binds)
      .all<{ detail: string }>();
    const details = results.map((r) => r.detail);
    expect(details.filter((d) => /^SCAN phi_audit\b/.test(d))).toEqual([]);
    expect(details).toContainEqual(expect.stringMatching(/^SEARCH phi_audit_patients USING (COVERING )?INDEX \S+ \(tenant_id=\? AND patient_id=\? AND seq>\?\)$/));
    expect(details).toContainEqual(expect.stringMatching(/^SEARCH phi_audit USING (COVERING )?INDEX phi_audit_pending \(seq>\?\)$/));
  });
});

describe("the tenant's listing", () => {
  it("walks the tenant's records in seq order with every filter but the patient, and the trail has no index nothing reads", async () => {
    const filters = [{}, { actor: "client-a" }, { since: "2026-11-01T00:00:00Z" }, { actor: "u", since: "2026-11-01T00:00:00Z", until: "2026-12-01T00:00:00Z" }];
    for (const f of filters) {
      const q = listStatement("phi_audit", auditListOptions("ten_default", { after: 0, limit: 50, ...f }));
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
        .bind(...q.binds)
        .all<{ detail: string }>();
      // One search of the tenant's (tenant_id, seq) index, no sort: each page reads forward from its cursor.
      expect(results.map((r) => r.detail)).toEqual(["SEARCH phi_audit USING INDEX phi_audit_tenant (tenant_id=? AND seq>?)"]);
    }
    const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'phi_audit' ORDER BY name").all<{ name: string }>();
    expect(results.map((r) => r.name)).toEqual(["phi_audit_origin", "phi_audit_pending", "phi_audit_tenant"]);
  });
});

describe("migration 0009 on a trail sealed before it", () => {
  it("links every sealed record (a list that is not JSON-safe gets none, and stops nothing), then the trigger links each record the sealer seals", async () => {
    const db = env.UPGRADE_DB;
    const before = env.TEST_MIGRATIONS.filter((m) => m.name < "0009");
    const after = env.TEST_MIGRATIONS.filter((m) => m.name >= "0009");
    expect(after[0]?.name).toMatch(/^0009_/);
    await applyD1Migrations(db, before);
    const record = (n: number, patientIds: string) =>
      auditInsert(db, "phi_audit", {
        at: `2026-11-2${n}T10:00:00.000Z`, tenant_id: "ten_default", actor_sub: "old", actor_client: "c", actor_roles: "", token_id: "t", action: "read",
        resource_type: "Patient", resource_id: "", patient_ids: patientIds, outcome: "success", reason: "", purpose_of_use: "TREAT", client_ip: "1", request_id: `r${n}`, trace_id: "",
      });
    await db.batch([record(1, "p-one"), record(2, "p-one,p-two"), record(3, ""), record(4, 'odd"id\\x'), record(5, "bad\u0001id")]);
    expect(await sealPending(db, PHI_CHAIN, new Date())).toMatchObject({ sealed: 5 });
    await applyD1Migrations(db, after);
    const all = async () =>
      (await db.prepare("SELECT patient_id, seq FROM phi_audit_patients ORDER BY patient_id, seq").all<{ patient_id: string; seq: number }>()).results.map((r) => [r.patient_id, r.seq]);
    // Quotes and backslashes survive the escaping; a control character makes the list invalid JSON: no links, no error.
    expect(await all()).toEqual([
      ['odd"id\\x', 4],
      ["p-one", 1],
      ["p-one", 2],
      ["p-two", 2],
    ]);
    // A record pending at the migration, and one after: the sealer's run links both, in its own transaction.
    await db.batch([record(6, "p-two,p-three")]);
    expect(await sealPending(db, PHI_CHAIN, new Date())).toMatchObject({ sealed: 1 });
    expect((await all()).filter(([, seq]) => seq === 6)).toEqual([
      ["p-three", 6],
      ["p-two", 6],
    ]);
    await db.batch([record(7, "bad\u0002id")]);
    expect(await sealPending(db, PHI_CHAIN, new Date())).toMatchObject({ sealed: 1 });
    expect(await verifyChain(db, PHI_CHAIN)).toMatchObject({ ok: true, records: 7 });
  });
});
