import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { call, patient } from "./helpers";

async function versions(): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions").first<{ n: number }>())?.n ?? -1;
}

/** Sends a body and checks: a 4xx OperationOutcome, and nothing stored. */
async function rejected(path: string, raw: string, contentType = "application/fhir+json", method = "POST"): Promise<number> {
  const before = await versions();
  const res = await call(path, { method, raw, contentType });
  const body = await res.text();
  expect(res.status, body.slice(0, 200)).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(res.headers.get("content-type")).toContain("application/fhir+json");
  expect(JSON.parse(body)).toMatchObject({ resourceType: "OperationOutcome" });
  expect(await versions()).toBe(before);
  return res.status;
}

function nest(depth: number): unknown {
  let v: unknown = "x";
  for (let i = 0; i < depth; i++) v = { extension: [{ url: "u", extension: v }] };
  return v;
}

describe("malformed input: always a 4xx OperationOutcome, nothing written", () => {
  it("wrong resource types and arbitrary JSON", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ resourceType: fc.constantFrom("Observation", "patient", "Bundle", "", "Patient "), name: fc.anything() }),
          fc.jsonValue(),
          fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue(), { maxKeys: 5 }).map((d) => ({ ...d, resourceType: "Patient", bogus: 1 })),
        ),
        async (value) => {
          await rejected("/Patient", JSON.stringify(value));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("bad dates in every date-typed element", async () => {
    const badDate = fc.oneof(
      fc.constantFrom("yesterday", "2023-02-30", "1990-13-01", "19900101", "1990-1-1", "2020-01-01T10:00", "0000", ""),
      fc.string({ maxLength: 20 }).filter((s) => !/^\d{4}(-\d{2}(-\d{2})?)?$/.test(s)),
    );
    await fc.assert(
      fc.asyncProperty(badDate, fc.constantFrom("birthDate", "deceasedDateTime"), async (d, field) => {
        await rejected("/Patient", JSON.stringify({ resourceType: "Patient", [field]: d }));
      }),
      { numRuns: 30 },
    );
    await rejected(
      "/Observation",
      JSON.stringify({ resourceType: "Observation", status: "final", code: { text: "x" }, subject: { reference: "Patient/x" }, effectiveInstant: "2020-01-01" }),
    );
  });

  it("huge strings, too many elements, deep nesting, bad JSON and wrong content types", async () => {
    await rejected("/Patient", JSON.stringify({ resourceType: "Patient", name: [{ family: "x".repeat(5000) }] }));
    await rejected("/Patient", JSON.stringify({ resourceType: "Patient", name: Array.from({ length: 21 }, () => ({ family: "x" })) }));
    expect(await rejected("/Patient", JSON.stringify({ resourceType: "Patient", text: { status: "generated", div: "<div>" + "y".repeat(1_100_000) + "</div>" } }))).toBe(413);
    await rejected("/Patient", JSON.stringify({ resourceType: "Patient", extension: [nest(50)] }));
    await rejected("/Patient", "[".repeat(100_000) + "]".repeat(100_000));
    await rejected("/Patient", "{not json");
    await rejected("/Patient", "");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data", "application/fhir+xml", "application/json-seq"), async (ct) => {
        expect(await rejected("/Patient", JSON.stringify(patient("Typed")), ct)).toBe(415);
      }),
      { numRuns: 6 },
    );
  });

  it("malformed updates, ids and preconditions change nothing", async () => {
    const res = await call("/Patient", { method: "POST", body: patient("Stable") });
    const created = await res.json<{ id: string }>();
    const id = created.id;
    await rejected(`/Patient/${id}`, JSON.stringify({ ...created, birthDate: "nope" }), undefined, "PUT");
    await rejected(`/Patient/${id}`, JSON.stringify({ ...created, id: "someone-else" }), undefined, "PUT");
    await rejected(`/Patient/${id}`, JSON.stringify({ resourceType: "Patient" }), undefined, "PUT");
    await rejected("/Patient/00000000-0000-4000-8000-000000000000", JSON.stringify({ resourceType: "Patient", id: "00000000-0000-4000-8000-000000000000" }), undefined, "PUT");
    await rejected("/Patient/not_an_id!", JSON.stringify(created), undefined, "PUT");
    expect((await call(`/Patient/${id}`, { method: "DELETE", headers: { "if-match": "garbage" } })).status).toBe(412);
    expect((await call(`/Patient/${id}/_history/0`)).status).toBe(400);
    expect((await call(`/Patient/${id}/_history?_count=1000`)).status).toBe(400);
    expect((await call(`/Patient/${id}`, { method: "PATCH" })).status).toBe(405);
  });
});
