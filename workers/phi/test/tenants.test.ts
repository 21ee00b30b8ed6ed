import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { PHI_ROUTES } from "../../auth/src/gateway/routes/phi";
import { ASYNC, downloadAll, jobIdOf, kickOff, waitForManifest } from "./export-helpers";
import { call, form, json, patient, type Caller } from "./helpers";

/**
 * The tenant matrix for phi (issue 18): for every route of the gateway's table, tenant B's
 * client aimed at tenant A's resources gets exactly what an id that does not exist gets (404,
 * same OperationOutcome), or a search, history or audit trail without A's rows; and A's rows
 * are the same afterwards. A route added to the table without a case here fails the test.
 */
const SCOPES = ["phi:read", "phi:write", "audit:read"];
const A: Caller = { sub: "cli_alpha", tenantId: "ten_alpha", scopes: SCOPES };
const B: Caller = { sub: "cli_beta", tenantId: "ten_beta", scopes: SCOPES };
const MISSING = "00000000-0000-4000-8000-000000000000";

interface Fixture {
  patient: string;
  observation: string;
  family: string;
  ssn: string;
  /** A's finished export: its job id and one of its file names. */
  job: string;
  file: string;
}

type Bundle = { total?: number; entry?: { resource: { id: string; resourceType: string } }[] };

async function ok<T>(res: Response, status: number): Promise<T> {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${await res.text()}`);
  return json<T>(res);
}

function observation(subject: string): Record<string, unknown> {
  return {
    resourceType: "Observation",
    status: "final",
    code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
    subject: { reference: `Patient/${subject}` },
    effectiveDateTime: "2026-11-30T10:00:00Z",
    valueQuantity: { value: 72, unit: "beats/minute", system: "http://unitsofmeasure.org", code: "/min" },
  };
}

async function setup(): Promise<Fixture> {
  const family = `Tenantmatrix${crypto.randomUUID().slice(0, 8)}`;
  const ssn = `999-42-${Math.floor(Math.random() * 9000 + 1000)}`;
  const body = patient(family, "Alpha", { identifier: [{ system: "urn:oid:2.16.840.1.113883.4.1", value: ssn }] });
  const p = await ok<{ id: string }>(await call("/Patient", { method: "POST", body, as: A }), 201);
  // A second version, so history and vread have something to show.
  await ok(await call(`/Patient/${p.id}`, { method: "PUT", body: { ...body, id: p.id, gender: "other" }, as: A }), 200);
  const o = await ok<{ id: string }>(await call("/Observation", { method: "POST", body: observation(p.id), as: A }), 201);
  // A's export, finished and downloaded, so its records are all written before A's rows are compared.
  const status = await kickOff("", { as: A });
  const { manifest } = await waitForManifest(status, A);
  const mine = await downloadAll(manifest, A);
  expect((mine.get("Patient") ?? []).map((r) => r.id)).toContain(p.id);
  const url = manifest.output[0]?.url ?? "";
  return { patient: p.id, observation: o.id, family, ssn, job: jobIdOf(status), file: url.slice(url.lastIndexOf("/") + 1) };
}

/** Every row of a tenant in phi's tables (audit rows without their seal columns, which the sealer sets on its own). */
async function tenantRows(tenantId: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of ["resource_versions", "search_index", "phi_audit"]) {
    const { results } = await env.DB.prepare(`SELECT * FROM ${table} WHERE tenant_id = ? ORDER BY rowid`).bind(tenantId).all<Record<string, unknown>>();
    out[table] = table === "phi_audit" ? results.map(({ prev_hash: _p, hash: _h, sealed_at: _s, ...data }) => data) : results;
  }
  return out;
}

/** An OperationOutcome (or a response Bundle) without what differs per request: ids and instants. */
async function outcomeOf(res: Response): Promise<unknown> {
  const body = await res.json<Record<string, unknown>>();
  const text = JSON.stringify(body)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<id>")
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, "<instant>");
  return JSON.parse(text);
}

/** B's answer for A's id is the answer for an id that does not exist (status and body, ids aside). */
async function sameAsMissing(method: string, path: (id: string) => string, aId: string, body?: (id: string) => unknown, headers?: Record<string, string>): Promise<void> {
  const theirs = await call(path(aId), { method, body: body?.(aId), headers, as: B });
  const none = await call(path(MISSING), { method, body: body?.(MISSING), headers, as: B });
  expect(theirs.status, `${method} ${path(aId)}`).toBe(none.status);
  expect(theirs.status).toBeGreaterThanOrEqual(400);
  expect(await outcomeOf(theirs)).toEqual(await outcomeOf(none));
}

async function searchIds(res: Response): Promise<string[]> {
  const b = await ok<Bundle>(res, 200);
  return (b.entry ?? []).map((e) => e.resource.id);
}

/** B's own export through `path`: finished, downloaded; it holds nothing of A's. */
async function exportAsB(f: Fixture, method: "GET" | "POST", path: string): Promise<void> {
  const res = await call(path, { method, headers: ASYNC, as: B });
  expect(res.status, await res.clone().text()).toBe(202);
  const { manifest } = await waitForManifest(res.headers.get("content-location") ?? "", B);
  const ids = [...(await downloadAll(manifest, B)).values()].flat().map((r) => r.id);
  expect(ids).not.toContain(f.patient);
  expect(ids).not.toContain(f.observation);
}

type Case = (f: Fixture) => Promise<void>;

/** One case per route of the gateway's table (`METHOD path` as the table writes it). */
const CASES: Record<string, Case> = {
  "GET /metadata": async () => {
    // Public and the same for every tenant: it describes the server, not anyone's data.
    expect((await call("/metadata", { as: B })).status).toBe(200);
  },
  "POST /Patient": async (f) => {
    // If-None-Exist with A's identifier: nothing of A's matches in B, so B gets a new patient of its own.
    const res = await call("/Patient", {
      method: "POST",
      body: patient(f.family, "Beta"),
      headers: { "if-none-exist": `identifier=urn:oid:2.16.840.1.113883.4.1|${f.ssn}` },
      as: B,
    });
    expect(res.status).toBe(201);
    expect((await json<{ id: string }>(res)).id).not.toBe(f.patient);
  },
  "GET /Patient": async (f) => {
    expect(await searchIds(await call(`/Patient?family=${f.family}&given=Alpha`, { as: B }))).toEqual([]);
    expect(await searchIds(await call(`/Patient?_id=${f.patient}`, { as: B }))).toEqual([]);
    const counted = await ok<Bundle>(await call(`/Patient?identifier=urn:oid:2.16.840.1.113883.4.1|${f.ssn}&_summary=count`, { as: B }), 200);
    expect(counted.total).toBe(0);
  },
  "PUT /Patient": async (f) => {
    // A conditional update on A's identifier: no match in B, so it creates B's own patient (FHIR: 201).
    const res = await call(`/Patient?identifier=urn:oid:2.16.840.1.113883.4.1|${f.ssn}`, { method: "PUT", body: patient("Intruder", "Beta"), as: B });
    expect(res.status).toBe(201);
    expect((await json<{ id: string }>(res)).id).not.toBe(f.patient);
  },
  "POST /Patient/_search": async (f) => {
    expect(await searchIds(await call("/Patient/_search", { ...form({ family: f.family, given: "Alpha" }), as: B }))).toEqual([]);
    expect(await searchIds(await call("/Patient/_search", { ...form({ _id: f.patient }), as: B }))).toEqual([]);
  },
  "GET /Patient/:id": (f) => sameAsMissing("GET", (id) => `/Patient/${id}`, f.patient),
  "PUT /Patient/:id": (f) => sameAsMissing("PUT", (id) => `/Patient/${id}`, f.patient, (id) => ({ ...patient("Intruder"), id })),
  "DELETE /Patient/:id": (f) => sameAsMissing("DELETE", (id) => `/Patient/${id}`, f.patient),
  "GET /Patient/:id/_history": (f) => sameAsMissing("GET", (id) => `/Patient/${id}/_history`, f.patient),
  "GET /Patient/:id/_history/:vid": (f) => sameAsMissing("GET", (id) => `/Patient/${id}/_history/1`, f.patient),
  "GET /Patient/:id/$access-log": (f) => sameAsMissing("GET", (id) => `/Patient/${id}/$access-log`, f.patient),
  "POST /Observation": (f) => sameAsMissing("POST", () => "/Observation", f.patient, (id) => observation(id)),
  "GET /Observation": async (f) => {
    expect(await searchIds(await call(`/Observation?subject=Patient/${f.patient}`, { as: B }))).toEqual([]);
    expect(await searchIds(await call(`/Observation?_id=${f.observation}`, { as: B }))).toEqual([]);
    // Included and revincluded resources stay within the tenant too.
    expect(await searchIds(await call(`/Patient?_id=${f.patient}&_revinclude=Observation:patient`, { as: B }))).toEqual([]);
  },
  "POST /Observation/_search": async (f) => {
    expect(await searchIds(await call("/Observation/_search", { ...form({ subject: `Patient/${f.patient}` }), as: B }))).toEqual([]);
  },
  "GET /Observation/:id": (f) => sameAsMissing("GET", (id) => `/Observation/${id}`, f.observation),
  "GET /audit": async (f) => {
    const all = await ok<{ data: { tenant_id: string; actor_sub: string }[] }>(await call("/audit?limit=200", { as: B }), 200);
    expect(all.data.length).toBeGreaterThan(0);
    expect(all.data.every((r) => r.tenant_id === "ten_beta" && r.actor_sub === "cli_beta")).toBe(true);
    const about = await ok<{ data: { tenant_id: string; outcome: string }[] }>(await call(`/audit?patient=${f.patient}&limit=200`, { as: B }), 200);
    // B's own refused attempts at A's patient are B's records; none of A's.
    expect(about.data.every((r) => r.tenant_id === "ten_beta" && r.outcome !== "success")).toBe(true);
  },
  "POST /": async (f) => {
    // A transaction touching A's patient fails exactly as one touching an id that does not exist.
    const tx = (type: string, entry: Record<string, unknown>) => (id: string) => ({ resourceType: "Bundle", type, entry: [JSON.parse(JSON.stringify(entry).replaceAll("<id>", id))] });
    await sameAsMissing("POST", () => "", f.patient, tx("transaction", { request: { method: "GET", url: "Patient/<id>" } }));
    await sameAsMissing("POST", () => "", f.patient, tx("transaction", { request: { method: "DELETE", url: "Patient/<id>" } }));
    // A batch answers each entry: the entry for A's id is the entry for a missing one.
    const read = tx("batch", { request: { method: "GET", url: "Patient/<id>" } });
    const theirs = await call("", { method: "POST", body: read(f.patient), as: B });
    const none = await call("", { method: "POST", body: read(MISSING), as: B });
    expect(theirs.status).toBe(200);
    expect(await outcomeOf(theirs)).toEqual(await outcomeOf(none));
  },
  "GET /$export": (f) => exportAsB(f, "GET", "/$export"),
  "POST /$export": (f) => exportAsB(f, "POST", "/$export"),
  "GET /Patient/$export": (f) => exportAsB(f, "GET", "/Patient/$export"),
  "POST /Patient/$export": (f) => exportAsB(f, "POST", "/Patient/$export"),
  "GET /$export-status/:job": (f) => sameAsMissing("GET", (id) => `/$export-status/${id}`, f.job),
  "DELETE /$export-status/:job": (f) => sameAsMissing("DELETE", (id) => `/$export-status/${id}`, f.job),
  "GET /$export-file/:job/:file": (f) => sameAsMissing("GET", (id) => `/$export-file/${id}/${f.file}`, f.job),
  "GET /audit/verify": async () => {
    // The chain is the database's: verify reports counts and seal state, never a record of another tenant.
    const res = await ok<Record<string, unknown>>(await call("/audit/verify", { as: B }), 200);
    expect(JSON.stringify(res)).not.toContain("ten_alpha");
    expect(JSON.stringify(res)).not.toContain("cli_alpha");
  },
};

describe("tenant matrix: phi", () => {
  let f: Fixture;
  let before: Record<string, unknown[]>;
  beforeAll(async () => {
    f = await setup();
    before = await tenantRows("ten_alpha");
    expect(before.resource_versions?.length).toBe(3);
  });

  it("has a case for every phi route of the gateway's table, and no other", () => {
    const routes = PHI_ROUTES.map((r) => `${r.method} ${r.path}`).sort();
    expect(Object.keys(CASES).sort()).toEqual(routes);
  });

  for (const route of PHI_ROUTES) {
    const key = `${route.method} ${route.path}`;
    it(`${key}: tenant B never reaches tenant A's data`, async () => {
      const run = CASES[key];
      if (!run) throw new Error(`no tenant case for ${key}`);
      await run(f);
    });
  }

  it("left every row of tenant A as it was, and A still reads its own data", async () => {
    expect(await tenantRows("ten_alpha")).toEqual(before);
    expect((await call(`/Patient/${f.patient}`, { as: A })).status).toBe(200);
    expect(await searchIds(await call(`/Patient?family=${f.family}&given=Alpha`, { as: A }))).toEqual([f.patient]);
    // A's accounting of disclosures lists A's own accesses only: B's refused attempts are B's records.
    const trail = await ok<{ data: { actor: { sub: string } }[] }>(await call(`/Patient/${f.patient}/$access-log`, { as: A }), 200);
    expect(trail.data.length).toBeGreaterThan(0);
    expect(trail.data.every((r) => r.actor.sub === "cli_alpha")).toBe(true);
  });

  it("a platform client (tenant ten_platform) sees no tenant's data", async () => {
    const platform: Caller = { sub: "cli_platform", tenantId: "ten_platform", scopes: SCOPES };
    expect((await call(`/Patient/${f.patient}`, { as: platform })).status).toBe(404);
    expect(await searchIds(await call(`/Patient?family=${f.family}`, { as: platform }))).toEqual([]);
  });
});
