import { env, SELF } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { snapshot } from "../../../shared/metrics";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { LIMITS } from "../src/config";
import { BundleSchema, ResourceSchema, type Bundle } from "../src/fhir/bundle";
import { GENERATOR } from "../src/generator/constants";
import { app } from "../src/index";
import { CHUNK_MAX_PATIENTS, CHUNK_TARGET_CHARS, ndjsonStream } from "../src/output/ndjson";

const BASE = "https://synthetic.internal/v1/synthetic/patients";
const tester = () => gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "qa", scopes: ["synthetic:generate"] });
const get = async (query: string, headers?: Record<string, string>) =>
  SELF.fetch(`${BASE}${query}`, { headers: headers ?? (await tester()) });

/** Patients generated so far in this isolate, by format (the worker's own counter). */
function generated(format: string): number {
  const m = snapshot().find((s) => s.name === "synthetic_patients_generated_total");
  const p = m?.points.find((x) => x.labels.format === format);
  return p && "value" in p ? p.value : 0;
}

async function problem(res: Response) {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  return res.json<{ code: string; detail?: string; limit?: number; parameter?: string; errors?: { path: string }[] }>();
}

const lines = (text: string) => text.split("\n").filter((l) => l.length > 0);
/** NDJSON bodies read as bytes then decoded (workerd warns on .text() of a non-text type). */
const ndjson = async (res: Response) => lines(new TextDecoder().decode(await res.arrayBuffer()));

describe("GET /v1/synthetic/patients?format=bundle", () => {
  it("answers a valid collection Bundle with a Provenance, byte-identical on a rerun", async () => {
    const res = await get("?count=5&seed=http-1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/fhir+json");
    expect(res.headers.get("x-synthetic-generator")).toBe(GENERATOR);
    expect(res.headers.get("x-synthetic-seed")).toBe("http-1");
    expect(res.headers.get("x-synthetic-reference-date")).toBe("2025-01-01");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const text = await res.text();
    const bundle = JSON.parse(text) as Bundle;
    expect(BundleSchema.safeParse(bundle).success).toBe(true);
    expect(bundle.entry.filter((e) => e.resource.resourceType === "Patient")).toHaveLength(5);
    expect(bundle.entry.at(-1)?.resource.resourceType).toBe("Provenance");
    expect(await (await get("?count=5&seed=http-1")).text()).toBe(text);
    expect(await (await get("?count=5&seed=http-2")).text()).not.toBe(text);
  });

  it("defaults to 10 patients of the default seed, and can leave Observations out", async () => {
    const all = await (await get("")).json<Bundle>();
    expect(all.entry.filter((e) => e.resource.resourceType === "Patient")).toHaveLength(10);
    expect(all.entry.some((e) => e.resource.resourceType === "Observation")).toBe(true);
    const bare = await (await get("?observations=false")).json<Bundle>();
    expect(bare.entry.some((e) => e.resource.resourceType === "Observation")).toBe(false);
    const patientsOf = (b: Bundle) => b.entry.filter((e) => e.resource.resourceType === "Patient").map((e) => e.resource);
    expect(patientsOf(bare)).toEqual(patientsOf(all));
  });
});

describe("GET /v1/synthetic/patients?format=ndjson", () => {
  it("streams one valid resource per line, the same resources as the bundle", async () => {
    const res = await get("?count=20&seed=nd&format=ndjson");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/fhir+ndjson");
    const out = (await ndjson(res)).map((l) => JSON.parse(l) as unknown);
    for (const r of out) expect(ResourceSchema.safeParse(r).success).toBe(true);
    const bundle = await (await get("?count=20&seed=nd")).json<Bundle>();
    expect(out).toEqual(bundle.entry.map((e) => e.resource).filter((r) => r.resourceType !== "Provenance"));
  });

  it("gives offset=9999&count=1 exactly the last patient of count=10000", { timeout: 120_000 }, async () => {
    const full = await ndjson(await get("?count=10000&seed=ra&format=ndjson&observations=false"));
    const lone = await ndjson(await get("?offset=9999&count=1&seed=ra&format=ndjson&observations=false"));
    const lastPatient = full.findLastIndex((l) => l.startsWith('{"resourceType":"Patient"'));
    expect(lone).toEqual(full.slice(lastPatient));
    const patient = JSON.parse(lone[0] ?? "{}") as { identifier: { value: string }[] };
    expect(patient.identifier[0]?.value).toBe("ra:9999");
  });

  it("sends the first line before generating the rest (pull-based, memory bounded)", async () => {
    const before = generated("ndjson");
    const res = await get(`?count=${LIMITS.ndjson}&seed=big&format=ndjson`);
    expect(res.status).toBe(200);
    const reader = res.body?.getReader();
    if (!reader) throw new Error("no body");
    const first = await reader.read();
    const text = new TextDecoder().decode(first.value as Uint8Array | undefined);
    expect(text.startsWith('{"resourceType":"Patient"')).toBe(true);
    // Only what the reader pulled (plus the stream's one-chunk queue) has been generated.
    expect(generated("ndjson") - before).toBeLessThanOrEqual(2 * CHUNK_MAX_PATIENTS);
    await reader.cancel();
  });

  it("generates a bounded chunk of whole patients per pull and nothing after a cancel", async () => {
    const before = generated("ndjson");
    const reader = ndjsonStream({ seed: "pull", referenceDate: "2025-01-01", observations: true, offset: 0, count: 1_000 }).getReader();
    const chunk = await reader.read();
    const text = new TextDecoder().decode(chunk.value);
    // Whole lines of whole patients: the chunk ends a line, and it stops at the patient that reached the target size.
    expect(text.endsWith("\n")).toBe(true);
    const firstLines = lines(text);
    const starts = firstLines.flatMap((l, k) => (l.startsWith('{"resourceType":"Patient"') ? [k] : []));
    expect(starts[0]).toBe(0);
    expect(starts.length).toBeGreaterThanOrEqual(1);
    expect(starts.length).toBeLessThanOrEqual(CHUNK_MAX_PATIENTS);
    const beforeLast = firstLines.slice(0, starts.at(-1)).join("\n").length;
    expect(beforeLast).toBeLessThan(CHUNK_TARGET_CHARS);
    for (const l of firstLines) expect(() => JSON.parse(l) as unknown).not.toThrow();
    const pulled = generated("ndjson") - before;
    expect(pulled).toBeLessThanOrEqual(2 * CHUNK_MAX_PATIENTS);
    await reader.cancel();
    expect(generated("ndjson") - before).toBe(pulled);
    // Without Observations patients are small: a chunk carries several.
    const small = ndjsonStream({ seed: "pull", referenceDate: "2025-01-01", observations: false, offset: 0, count: 100 }).getReader();
    const smallLines = lines(new TextDecoder().decode((await small.read()).value));
    expect(smallLines.filter((l) => l.startsWith('{"resourceType":"Patient"')).length).toBeGreaterThan(1);
    await small.cancel();
    const done = ndjsonStream({ seed: "pull", referenceDate: "2025-01-01", observations: false, offset: 0, count: 1 }).getReader();
    expect((await done.read()).done).toBe(false);
    expect((await done.read()).done).toBe(true);
  });
});

describe("limits and bad parameters", () => {
  it("names the limit that a count or offset exceeds", async () => {
    let res = await get(`?count=${LIMITS.bundle + 1}`);
    expect(res.status).toBe(400);
    let p = await problem(res);
    expect(p).toMatchObject({ code: "limit_exceeded", parameter: "count", limit: LIMITS.bundle });
    expect(p.detail).toContain(String(LIMITS.bundle));
    res = await get(`?count=${LIMITS.ndjson + 1}&format=ndjson`);
    p = await problem(res);
    expect(p).toMatchObject({ code: "limit_exceeded", limit: LIMITS.ndjson });
    expect(p.detail).toContain(String(LIMITS.ndjson));
    res = await get(`?count=10&offset=${LIMITS.index - 5}`);
    expect(await problem(res)).toMatchObject({ code: "limit_exceeded", parameter: "offset", limit: LIMITS.index });
    expect((await get(`?count=${LIMITS.bundle}&observations=false`)).status).toBe(200);
  });

  it.each([
    ["count=0", "count"],
    ["count=-1", "count"],
    ["count=1.5", "count"],
    ["count=abc", "count"],
    ["offset=-3", "offset"],
    ["seed=a:b", "seed"],
    ["seed=" + "x".repeat(65), "seed"],
    ["reference_date=2023-02-30", "reference_date"],
    ["reference_date=1850-01-01", "reference_date"],
    ["reference_date=yesterday", "reference_date"],
    ["format=xml", "format"],
    ["observations=maybe", "observations"],
    ["colour=blue", ""],
  ])("refuses %s with a 400 naming the parameter", async (query, param) => {
    const res = await get(`?${query}`);
    expect(res.status).toBe(400);
    const p = await problem(res);
    expect(p.code).toBe("invalid_request");
    expect(p.errors?.map((e) => e.path).join(" ")).toContain(param);
  });

  it("answers 200 or a 400 problem for any parameter value, never a 500", async () => {
    const headers = await tester();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("count", "seed", "offset", "reference_date", "format", "observations"),
        fc.string({ maxLength: 30 }),
        async (name, value) => {
          const q = new URLSearchParams({ [name]: value });
          if (name !== "count") q.set("count", "1");
          const res = await SELF.fetch(`${BASE}?${q.toString()}`, { headers });
          expect([200, 400]).toContain(res.status);
          if (res.status === 400) expect((await res.json<{ status: number }>()).status).toBe(400);
          else await res.body?.cancel();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("access", () => {
  it("needs the gateway's principal, with synthetic:generate", async () => {
    expect((await SELF.fetch(BASE)).status).toBe(401);
    const wrongScope = await gatewayHeaders(env.GATEWAY_HMAC_KEY, { scopes: ["phi:read"] });
    const res = await get("", wrongScope);
    expect(res.status).toBe(403);
    expect((await problem(res)).code).toBe("insufficient_scope");
    const wildcard = await gatewayHeaders(env.GATEWAY_HMAC_KEY, { scopes: ["synthetic:*"] });
    expect((await get("?count=1", wildcard)).status).toBe(200);
  });

  it("answers 405 for a wrong method", async () => {
    const res = await SELF.fetch(BASE, { method: "DELETE", headers: await tester() });
    expect(res.status).toBe(405);
  });
});

describe("OpenAPI", () => {
  it("documents both routes from their schemas", () => {
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "synthetic-phi", version: "test" } });
    expect(Object.keys(doc.paths ?? {}).sort()).toEqual(["/v1/synthetic/load", "/v1/synthetic/patients"]);
    const get = doc.paths?.["/v1/synthetic/patients"]?.get;
    expect(get?.parameters?.map((p) => ("name" in p ? p.name : "")).sort()).toEqual(
      ["count", "format", "observations", "offset", "reference_date", "seed"],
    );
    const ok = JSON.stringify(get?.responses?.["200"]);
    expect(ok).toContain('"application/fhir+json"');
    expect(ok).toContain('"application/fhir+ndjson"');
  });
});
