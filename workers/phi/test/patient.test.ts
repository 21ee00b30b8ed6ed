import { describe, expect, it } from "vitest";
import { call, createPatient, json, patient } from "./helpers";

describe("Patient CRUD and versions", () => {
  it("creates, reads, updates with If-Match, deletes to a tombstone", async () => {
    const { id, res, resource } = await createPatient(patient("Okafor"));
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toContain("application/fhir+json");
    expect(res.headers.get("etag")).toBe('W/"1"');
    expect(res.headers.get("location")).toBe(`/v1/phi/Patient/${id}/_history/1`);
    expect(resource).toMatchObject({ resourceType: "Patient", id, meta: { versionId: "1" } });

    const read = await call(`/Patient/${id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get("etag")).toBe('W/"1"');
    const body = await json(read);
    expect(body).toMatchObject({ name: [{ family: "Okafor" }], birthDate: "1980-02-29" });

    const stale = await call(`/Patient/${id}`, { method: "PUT", body: { ...body, gender: "other" }, headers: { "if-match": 'W/"7"' } });
    expect(stale.status).toBe(412);
    expect(await json(stale)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "conflict" }] });

    const upd = await call(`/Patient/${id}`, { method: "PUT", body: { ...body, gender: "other" }, headers: { "if-match": 'W/"1"' } });
    expect(upd.status).toBe(200);
    expect(upd.headers.get("etag")).toBe('W/"2"');
    expect(await json(upd)).toMatchObject({ gender: "other", meta: { versionId: "2" } });

    const v1 = await json(await call(`/Patient/${id}/_history/1`));
    expect(v1).toMatchObject({ gender: "female", meta: { versionId: "1" } });

    const del = await call(`/Patient/${id}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    const gone = await call(`/Patient/${id}`);
    expect(gone.status).toBe(410);
    expect(await json(gone)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "deleted" }] });

    const hist = await json<{ type: string; entry: { request: { method: string } }[] }>(await call(`/Patient/${id}/_history`));
    expect(hist.type).toBe("history");
    expect(hist.entry.map((e) => e.request.method)).toEqual(["DELETE", "PUT", "POST"]);
    expect((await call(`/Patient/${id}/_history/3`)).status).toBe(410);
    expect((await call(`/Patient/${id}/_history/9`)).status).toBe(404);
  });

  it("two concurrent updates of the same version: one wins, the other is refused, no fork", async () => {
    const { id, resource } = await createPatient(patient("Racer"));
    const put = (gender: string) =>
      call(`/Patient/${id}`, { method: "PUT", body: { ...resource, gender }, headers: { "if-match": 'W/"1"' } });
    const results = await Promise.all([put("male"), put("other")]);
    // The loser either read the winner's version (412, If-Match) or lost the race to
    // insert version 2 (409, unique version index): never a second version 2.
    const statuses = results.map((r) => r.status).sort();
    expect(statuses[0]).toBe(200);
    expect([409, 412]).toContain(statuses[1]);
    const loser = results.find((r) => r.status !== 200);
    expect(await loser?.json()).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "conflict" }] });
    const hist = await json<{ entry: unknown[] }>(await call(`/Patient/${id}/_history`));
    expect(hist.entry).toHaveLength(2);
  });

  it("refuses update-as-create and resurrection, and pages history", async () => {
    const missing = "00000000-0000-4000-8000-000000000001";
    expect((await call(`/Patient/${missing}`, { method: "PUT", body: { ...patient("Nobody"), id: missing } })).status).toBe(404);
    expect((await call(`/Patient/${missing}`, { method: "DELETE" })).status).toBe(404);
    expect((await call(`/Patient/${missing}/_history`)).status).toBe(404);
    const { id, resource } = await createPatient(patient("Pager"));
    for (const g of ["male", "other", "unknown"]) {
      expect((await call(`/Patient/${id}`, { method: "PUT", body: { ...resource, gender: g } })).status).toBe(200);
    }
    const first = await json<{ entry: { response: { etag: string } }[]; link: { relation: string; url: string }[] }>(
      await call(`/Patient/${id}/_history?_count=3`),
    );
    expect(first.entry.map((e) => e.response.etag)).toEqual(['W/"4"', 'W/"3"', 'W/"2"']);
    const next = first.link.find((l) => l.relation === "next");
    expect(next?.url).toBe(`https://phi.internal/v1/phi/Patient/${id}/_history?_count=3&_before=2`);
    const rest = await json<{ entry: { response: { etag: string } }[]; link: { relation: string }[] }>(await call(next?.url ?? ""));
    expect(rest.entry.map((e) => e.response.etag)).toEqual(['W/"1"']);
    expect(rest.link.map((l) => l.relation)).toEqual(["self"]);
    expect((await call(`/Patient/${id}`, { method: "DELETE", headers: { "if-match": 'W/"4"' } })).status).toBe(204);
    expect((await call(`/Patient/${id}`, { method: "DELETE" })).status).toBe(410);
    expect((await call(`/Patient/${id}`, { method: "PUT", body: resource })).status).toBe(410);
  });
});
