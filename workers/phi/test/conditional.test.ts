import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, json, patient } from "./helpers";

/** FHIR R4 conditional create (http.html#ccreate): what synthetic loading relies on to be idempotent. */
describe("POST /Patient with If-None-Exist", () => {
  const sys = "urn:health-platform:synthetic:patient";
  const withId = (value: string) => patient("Cond", "Ann", { identifier: [{ system: sys, value }] });
  const count = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions").first<{ n: number }>())?.n ?? 0;

  it("creates when nothing matches, returns the existing one (200, no new version) when one does", async () => {
    const first = await call("/Patient", { method: "POST", body: withId("s:1"), headers: { "if-none-exist": `identifier=${sys}|s:1` } });
    expect(first.status).toBe(201);
    const created = await json(first);
    const before = await count();
    const again = await call("/Patient", { method: "POST", body: withId("s:1"), headers: { "if-none-exist": `identifier=${sys}|s:1` } });
    expect(again.status).toBe(200);
    expect((await json(again)).id).toBe(created.id);
    expect(again.headers.get("etag")).toBe('W/"1"');
    expect(await count()).toBe(before);
  });

  it("of concurrent conditional creates that all found nothing, one creates and the others answer with its Patient", async () => {
    const criteria = `identifier=${sys}|race:1`;
    // Across four isolates of phi (separate instances on the one database), so the requests truly run at once.
    const instances = [SELF, env.ISO_1, env.ISO_2, env.ISO_3];
    const n = 16;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        call("/Patient", { method: "POST", body: withId("race:1"), headers: { "if-none-exist": criteria }, via: instances[i % instances.length] }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    const ids = await Promise.all(answers.map(async (r) => (await json<{ id: string }>(r)).id));
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(n - 1);
    expect(new Set(ids).size).toBe(1);
    // One Patient with one version: the losing writes left no version and no index row behind.
    const found = await json<{ entry?: { resource: { id: string } }[] }>(await call(`/Patient?identifier=${encodeURIComponent(`${sys}|race:1`)}`));
    expect(found.entry?.map((e) => e.resource.id)).toEqual([ids[0]]);
    const versions = await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions WHERE id = ?").bind(ids[0]).first<{ n: number }>();
    expect(versions?.n).toBe(1);
    const orphans = await env.DB.prepare("SELECT COUNT(*) AS n FROM search_index i WHERE NOT EXISTS (SELECT 1 FROM resource_versions v WHERE v.tenant_id = i.tenant_id AND v.resource_type = i.resource_type AND v.id = i.resource_id)").first<{ n: number }>();
    expect(orphans?.n).toBe(0);
    const again = await call("/Patient", { method: "POST", body: withId("race:1"), headers: { "if-none-exist": criteria } });
    expect(again.status).toBe(200);
    expect((await json<{ id: string }>(again)).id).toBe(ids[0]);
    // The requests that reached the write after the winner committed recorded what happened: a create that wrote
    // nothing (failed, conditional_match, naming no patient), then their read of the winner.
    const lost = await env.DB.prepare("SELECT outcome, patient_ids FROM phi_audit WHERE action = 'create' AND reason = 'conditional_match'").all<{ outcome: string; patient_ids: string }>();
    expect(lost.results.length).toBeGreaterThan(0);
    for (const r of lost.results) expect(r).toEqual({ outcome: "failed", patient_ids: "" });
    const reads = await env.DB.prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE action = 'read' AND resource_id = ? AND outcome = 'success'").bind(ids[0]).first<{ n: number }>();
    expect(reads?.n).toBe(n);
  });

  it("answers 412 when several match, and 400 for criteria it cannot search by", async () => {
    await call("/Patient", { method: "POST", body: withId("dup") });
    await call("/Patient", { method: "POST", body: withId("dup") });
    const before = await count();
    const res = await call("/Patient", { method: "POST", body: withId("dup"), headers: { "if-none-exist": `identifier=${sys}|dup` } });
    expect(res.status).toBe(412);
    expect((await json<{ resourceType: string }>(res)).resourceType).toBe("OperationOutcome");
    for (const bad of ["", "nonsense=1", "identifier="]) {
      const r = await call("/Patient", { method: "POST", body: withId("x"), headers: { "if-none-exist": bad } });
      expect(r.status, bad).toBe(400);
    }
    expect(await count()).toBe(before);
  });
});
