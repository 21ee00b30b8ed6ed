import { env } from "cloudflare:test";
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
