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
});
