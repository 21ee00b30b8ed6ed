import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { auditRows, call, createPatient, json, patient, PHI_CHAIN, sealAll } from "./helpers";

async function count(table: string): Promise<number> {
  return (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first<{ n: number }>())?.n ?? -1;
}

describe("audit integrity under load and failure", () => {
  it("100 concurrent writers leave a gap-free chain without forks, one record each", { timeout: 60_000 }, async () => {
    const before = await count("phi_audit");
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call("/Patient", { method: "POST", body: patient(`Concurrent${i}`) })),
    );
    expect(results.map((r) => r.status).every((s) => s === 201)).toBe(true);
    const rows = await auditRows();
    expect(rows.length - before).toBe(100);
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(rows.length);
    await sealAll();
    expect(await verifyChain(env.DB, PHI_CHAIN)).toMatchObject({ ok: true, records: rows.length, pending: 0 });
    expect(await count("resource_versions")).toBe(100);
  });

  it("when the audit record cannot be written: 503, no PHI returned, nothing written", async () => {
    const p = await createPatient(patient("Unwritable", "Ursula"));
    const versions = await count("resource_versions");
    const records = await count("phi_audit");
    await env.DB.prepare("CREATE TRIGGER audit_offline BEFORE INSERT ON phi_audit BEGIN SELECT RAISE(ABORT, 'audit offline'); END").run();
    try {
      const read = await call(`/Patient/${p.id}`);
      expect(read.status).toBe(503);
      const text = await read.text();
      expect(text).toContain("OperationOutcome");
      expect(text).not.toMatch(/Unwritable|Ursula/);

      const write = await call("/Patient", { method: "POST", body: patient("Neverstored") });
      expect(write.status).toBe(503);
      const upd = await call(`/Patient/${p.id}`, { method: "PUT", body: { ...p.resource, gender: "other" } });
      expect(upd.status).toBe(503);
      const search = await call("/Patient?family=Unwritable");
      expect(search.status).toBe(503);
      expect(await search.text()).not.toMatch(/Unwritable|Ursula/);
      expect((await call("/audit/verify")).status).toBe(503);
    } finally {
      await env.DB.prepare("DROP TRIGGER audit_offline").run();
    }
    expect(await count("resource_versions")).toBe(versions);
    expect(await count("phi_audit")).toBe(records);
    const after = await json(await call(`/Patient/${p.id}`));
    expect(after).toMatchObject({ gender: "female", meta: { versionId: "1" } });
  });
});
