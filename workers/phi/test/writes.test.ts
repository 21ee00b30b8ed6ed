import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, call, createPatient, expectValidFhir, json, patient } from "./helpers";

const SSN = "http://hl7.org/fhir/sid/us-ssn";

function withId(system: string, value: string, family = "Conditional"): Record<string, unknown> {
  return patient(family, "Ann", { identifier: [{ system, value }] });
}

describe("writes as generic clients send them", () => {
  it("plain application/json is accepted like application/fhir+json; other types are 415", async () => {
    const created = await call("/Patient", { method: "POST", body: patient("Plainjson"), contentType: "application/json; charset=utf-8" });
    expect(created.status).toBe(201);
    const p = await json(created);
    await expectValidFhir(p);
    const updated = await call(`/Patient/${String(p.id)}`, { method: "PUT", body: { ...p, gender: "male" }, contentType: "application/json" });
    expect(updated.status).toBe(200);
    const obs = await call("/Observation", {
      method: "POST",
      contentType: "application/json",
      body: { resourceType: "Observation", status: "final", code: { text: "pulse" }, subject: { reference: `Patient/${String(p.id)}` } },
    });
    expect(obs.status).toBe(201);
    for (const type of ["text/plain", "application/xml", "json", "application/fhir+xml"]) {
      const res = await call("/Patient", { method: "POST", body: patient("Wrongtype"), contentType: type });
      expect(res.status, type).toBe(415);
      expect(await json(res)).toMatchObject({ resourceType: "OperationOutcome" });
    }
  });

  it("_format: JSON spellings are served (application/json as such), anything else is 406", async () => {
    const { id } = await createPatient(patient("Formatted"));
    for (const f of ["json", "application/fhir+json", "application/json"]) {
      const res = await call(`/Patient/${id}?_format=${encodeURIComponent(f)}`);
      expect(res.status, f).toBe(200);
      expect(res.headers.get("content-type"), f).toMatch(f === "application/json" ? /^application\/json/ : /^application\/fhir\+json/);
      await expectValidFhir(await json(res));
    }
    const search = await call(`/Patient?family=Formatted&_format=application/json`);
    expect(search.headers.get("content-type")).toMatch(/^application\/json/);
    for (const f of ["xml", "application/fhir+xml", "text/turtle"]) {
      const res = await call(`/Patient/${id}?_format=${encodeURIComponent(f)}`);
      expect(res.status, f).toBe(406);
      const outcome = await json(res);
      await expectValidFhir(outcome);
      expect(outcome).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "not-supported" }] });
    }
  });

  it("Prefer: return=minimal, representation and OperationOutcome on create and update", async () => {
    const minimal = await call("/Patient", { method: "POST", body: patient("Preferred"), headers: { prefer: "return=minimal" } });
    expect(minimal.status).toBe(201);
    expect(await minimal.text()).toBe("");
    expect(minimal.headers.get("preference-applied")).toBe("return=minimal");
    const location = minimal.headers.get("location") ?? "";
    expect(location).toMatch(/^\/v1\/phi\/Patient\/[0-9a-f-]{36}\/_history\/1$/);
    expect(minimal.headers.get("etag")).toBe('W/"1"');
    const id = location.split("/")[4] ?? "";
    // No preference stated: the resource, and no Preference-Applied.
    const plain = await call("/Patient", { method: "POST", body: patient("Preferred") });
    expect(plain.headers.get("preference-applied")).toBeNull();
    expect(await json(plain)).toMatchObject({ resourceType: "Patient" });

    const current = await json(await call(`/Patient/${id}`));
    const asOutcome = await call(`/Patient/${id}`, { method: "PUT", body: { ...current, gender: "other" }, headers: { prefer: "return=OperationOutcome" } });
    expect(asOutcome.status).toBe(200);
    expect(asOutcome.headers.get("etag")).toBe('W/"2"');
    const outcome = await json(asOutcome);
    await expectValidFhir(outcome);
    expect(outcome).toMatchObject({ resourceType: "OperationOutcome", issue: [{ severity: "information", code: "informational" }] });

    const full = await call(`/Patient/${id}`, { method: "PUT", body: { ...current, gender: "unknown" }, headers: { prefer: "return=representation" } });
    expect(full.headers.get("preference-applied")).toBe("return=representation");
    const resource = await json(full);
    await expectValidFhir(resource);
    expect(resource).toMatchObject({ resourceType: "Patient", id, gender: "unknown", meta: { versionId: "3" } });
    // Errors are never reshaped by a preference.
    const refused = await call(`/Patient/${id}`, { method: "PUT", body: { ...current, id: "other" }, headers: { prefer: "return=minimal" } });
    expect(refused.status).toBe(400);
    expect(await json(refused)).toMatchObject({ resourceType: "OperationOutcome" });
  });
});

describe("conditional update: PUT /Patient?identifier=system|value", () => {
  it("of concurrent conditional updates that all found nothing, one creates and the others get 409, nothing duplicated", async () => {
    const criteria = `identifier=${encodeURIComponent(`${SSN}|999-41-0077`)}`;
    const instances = [SELF, env.ISO_1, env.ISO_2, env.ISO_3];
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => call(`/Patient?${criteria}`, { method: "PUT", body: withId(SSN, "999-41-0077"), via: instances[i % instances.length] })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    // The others updated the one Patient (they found it) or lost the race to create it (409: send again).
    expect(statuses.every((s) => s === 201 || s === 200 || s === 409)).toBe(true);
    const found = await json<{ entry?: unknown[] }>(await call(`/Patient?${criteria}`));
    expect(found.entry).toHaveLength(1);
    // Sent again, a lost one updates the one Patient.
    const again = await call(`/Patient?${criteria}`, { method: "PUT", body: withId(SSN, "999-41-0077") });
    expect(again.status).toBe(200);
  });

  it("0 matches creates, 1 match updates that Patient, several are 412", async () => {
    const criteria = `identifier=${encodeURIComponent(`${SSN}|999-41-0001`)}`;
    const first = await call(`/Patient?${criteria}`, { method: "PUT", body: withId(SSN, "999-41-0001") });
    expect(first.status).toBe(201);
    const made = await json(first);
    await expectValidFhir(made);
    const second = await call(`/Patient?${criteria}`, { method: "PUT", body: { ...withId(SSN, "999-41-0001"), gender: "male" } });
    expect(second.status).toBe(200);
    expect(await json(second)).toMatchObject({ id: made.id, gender: "male", meta: { versionId: "2" } });
    expect(second.headers.get("etag")).toBe('W/"2"');
    const trail = (await auditRows()).filter((r) => r.resource_id === made.id).map((r) => [r.action, r.outcome]);
    expect(trail).toEqual([
      ["create", "success"],
      ["update", "success"],
    ]);

    // If-Match is honoured on the match; a body id naming another resource is refused.
    const stale = await call(`/Patient?${criteria}`, { method: "PUT", body: withId(SSN, "999-41-0001"), headers: { "if-match": 'W/"1"' } });
    expect(stale.status).toBe(412);
    const other = await call(`/Patient?${criteria}`, { method: "PUT", body: { ...withId(SSN, "999-41-0001"), id: "not-this-one" } });
    expect(other.status).toBe(400);
    // No match and a client id: no update-as-create.
    const withClientId = await call(`/Patient?identifier=${encodeURIComponent(`${SSN}|999-41-0009`)}`, { method: "PUT", body: { ...withId(SSN, "999-41-0009"), id: "client-chosen" } });
    expect(withClientId.status).toBe(400);

    await createPatient(withId(SSN, "999-41-0002"));
    await createPatient(withId(SSN, "999-41-0002"));
    const several = await call(`/Patient?identifier=${encodeURIComponent(`${SSN}|999-41-0002`)}`, { method: "PUT", body: withId(SSN, "999-41-0002") });
    expect(several.status).toBe(412);
    expect(await json(several)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "conflict" }] });
  });

  it("needs criteria it can search by", async () => {
    for (const qs of ["", "?_sort=_lastUpdated", "?name=x", "?identifier="]) {
      const res = await call(`/Patient${qs}`, { method: "PUT", body: withId(SSN, "999-41-0003") });
      expect(res.status, qs).toBe(400);
      expect(await json(res)).toMatchObject({ resourceType: "OperationOutcome" });
    }
  });
});
