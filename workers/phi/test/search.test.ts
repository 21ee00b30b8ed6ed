import { describe, expect, it } from "vitest";
import { call, createPatient, form, json, patient } from "./helpers";

interface Bundle {
  resourceType: string;
  type: string;
  link: { relation: string; url: string }[];
  entry?: { resource: Record<string, unknown> & { id: string } }[];
}

async function searchGet(qs: string): Promise<Bundle> {
  const res = await call(`/Patient?${qs}`);
  expect(res.status).toBe(200);
  return json<Bundle>(res);
}

async function searchPost(type: string, params: Record<string, string>): Promise<Bundle> {
  const res = await call(`/${type}/_search`, form(params));
  expect(res.status).toBe(200);
  return json<Bundle>(res);
}

const ids = (b: Bundle) => (b.entry ?? []).map((e) => e.resource.id).sort();

describe("Patient search over blind indexes", () => {
  it("finds by family, given, birthdate and identifier, normalized for case and whitespace", async () => {
    const a = await createPatient(patient("Van  Der Berg", "Lotte", { identifier: [{ system: "urn:mrn", value: "MRN-1" }, { value: "loose-7" }] }));
    const b = await createPatient(patient("Van Der Berg", "Sem", { birthDate: "1990-01-02", identifier: [{ system: "urn:mrn", value: "MRN-2" }] }));
    await createPatient(patient("Jansen", "Lotte"));

    expect(ids(await searchGet("family=van%20der%20berg"))).toEqual([a.id, b.id].sort());
    expect(ids(await searchGet("family=VAN%20DER%20BERG&given=lotte"))).toEqual([a.id]);
    expect(ids(await searchGet("birthdate=1990-01-02"))).toEqual([b.id]);
    expect(ids(await searchGet("birthdate=eq1990-01-02&family=Van Der Berg"))).toEqual([b.id]);
    expect(ids(await searchPost("Patient", { identifier: "urn:mrn|MRN-2" }))).toEqual([b.id]);
    expect(ids(await searchPost("Patient", { identifier: "MRN-1" }))).toEqual([a.id]);
    expect(ids(await searchPost("Patient", { identifier: "|loose-7" }))).toEqual([a.id]);
    expect(ids(await searchPost("Patient", { identifier: "urn:other|MRN-1" }))).toEqual([]);
    expect(ids(await searchGet("family=Nobody"))).toEqual([]);
    const bundle = await searchGet("given=lotte");
    expect(bundle).toMatchObject({ resourceType: "Bundle", type: "searchset" });
    expect(bundle.entry).toHaveLength(2);
  });

  it("pages with opaque next links that carry no search value and are bound to the caller", async () => {
    for (let i = 0; i < 5; i++) await createPatient(patient("Pagewell", `P${i}`));
    const seen: string[] = [];
    let page = await searchPost("Patient", { family: "Pagewell", _count: "2" });
    let pages = 1;
    for (;;) {
      seen.push(...ids(page));
      const next = page.link.find((l) => l.relation === "next");
      if (!next) break;
      expect(next.url).not.toMatch(/Pagewell/i);
      expect(next.url).toMatch(/^https:\/\/phi\.internal\/v1\/phi\/Patient\?_cursor=/);
      const other = await call(next.url, { as: { sub: "someone-else" } });
      expect(other.status).toBe(400);
      const res = await call(next.url);
      expect(res.status).toBe(200);
      page = await json<Bundle>(res);
      pages++;
    }
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(5);
  });

  it("serves a full page of the largest size (_count=100; D1 binds at most 100 parameters per statement)", async () => {
    // Regression: a full 100-entry page read its heads in one statement with 101 parameters -> 500.
    const made = await Promise.all(Array.from({ length: 105 }, (_, i) => createPatient(patient("Fullpage", `P${i}`))));
    const first = await searchPost("Patient", { family: "Fullpage", _count: "100" });
    expect(first.entry).toHaveLength(100);
    const next = first.link.find((l) => l.relation === "next");
    expect(next).toBeDefined();
    const rest = await call(next?.url ?? "");
    expect(rest.status).toBe(200);
    const second = await json<Bundle>(rest);
    expect(second.entry).toHaveLength(5);
    expect([...ids(first), ...ids(second)].sort()).toEqual(made.map((m) => m.id).sort());
  });

  it("does not find deleted patients and finds the new values after an update", async () => {
    const p = await createPatient(patient("Renamed"));
    const body = await json(await call(`/Patient/${p.id}`));
    await call(`/Patient/${p.id}`, { method: "PUT", body: { ...body, name: [{ family: "Newname" }] } });
    expect(ids(await searchGet("family=Renamed"))).toEqual([]);
    expect(ids(await searchGet("family=Newname"))).toEqual([p.id]);
    await call(`/Patient/${p.id}`, { method: "DELETE" });
    expect(ids(await searchGet("family=Newname"))).toEqual([]);
  });

  it("refuses unknown parameters, bad dates, bad counts and tampered cursors with an OperationOutcome", async () => {
    for (const qs of ["name=x", "birthdate=1990-13-01", "birthdate=ge1990", "_count=-1", "_count=x", "_cursor=v1.k2.abc.def", "family=", "identifier=sys|", "_cursor=a&family=b"]) {
      const res = await call(`/Patient?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(await json(res)).toMatchObject({ resourceType: "OperationOutcome" });
    }
    const wrongType = await call("/Patient/_search", { method: "POST", raw: "{}", contentType: "application/json" });
    expect(wrongType.status).toBe(415);
  });
});

describe("Observation", () => {
  it("creates, reads and searches by patient, code and date ranges", async () => {
    const p = await createPatient(patient("Obsowner"));
    const other = await createPatient(patient("Otherowner"));
    const obs = (subject: string, code: string, when: string) => ({
      resourceType: "Observation",
      status: "final",
      code: { coding: [{ system: "http://loinc.org", code }] },
      subject: { reference: `Patient/${subject}`, display: "Obsowner" },
      effectiveDateTime: when,
      valueQuantity: { value: 72, unit: "/min", system: "http://unitsofmeasure.org", code: "/min" },
    });
    const made: string[] = [];
    for (const [s, code, when] of [
      [p.id, "8867-4", "2024-01-10T08:00:00Z"],
      [p.id, "8867-4", "2024-02-10T08:00:00+02:00"],
      [p.id, "29463-7", "2024-03-10"],
      [other.id, "8867-4", "2024-01-15T00:00:00Z"],
    ] as const) {
      const res = await call("/Observation", { method: "POST", body: obs(s, code, when) });
      expect(res.status).toBe(201);
      expect(res.headers.get("location")).toMatch(/^\/v1\/phi\/Observation\/.+\/_history\/1$/);
      made.push(String((await json(res)).id));
    }
    const read = await call(`/Observation/${made[0]}`);
    expect(read.status).toBe(200);
    expect(await json(read)).toMatchObject({ subject: { reference: `Patient/${p.id}` } });

    const find = async (params: Record<string, string>) => ids(await searchPost("Observation", params));
    expect(await find({ patient: p.id })).toEqual(made.slice(0, 3).sort());
    expect(await find({ subject: `Patient/${p.id}`, code: "http://loinc.org|8867-4" })).toEqual(made.slice(0, 2).sort());
    expect(await find({ code: "29463-7" })).toEqual([made[2]]);
    expect(await find({ code: "8867-4", date: "ge2024-01-12" })).toEqual([made[1], made[3]].sort());
    expect(await find({ code: "8867-4", date: "ge2024-01-12", patient: p.id })).toEqual([made[1]]);
    expect(await find({ code: "8867-4", date: "le2024-01-31" })).toEqual([made[0], made[3]].sort());
    expect(await find({ date: "2024-03" })).toEqual([made[2]]);
    expect(await find({ date: "gt2024-02-10T06:00:00Z" })).toEqual([made[2]]);
    expect(await find({ date: "lt2024-01-15T00:00:00Z", patient: p.id })).toEqual([made[0]]);
    const paged = await json<Bundle>(await call(`/Observation?patient=${p.id}&_count=2`));
    expect(paged.entry).toHaveLength(2);
    expect(paged.link.some((l) => l.relation === "next")).toBe(true);

    const unknownSubject = await call("/Observation", { method: "POST", body: obs("00000000-0000-4000-8000-000000000000", "8867-4", "2024-01-01") });
    expect(unknownSubject.status).toBe(422);
    expect((await call("/Observation/00000000-0000-4000-8000-000000000000")).status).toBe(404);
    expect((await call("/Observation?date=yesterday")).status).toBe(400);
    expect((await call("/Observation?patient=a/b")).status).toBe(400);
  });
});
