import { beforeAll, describe, expect, it } from "vitest";
import { basic, clientToken, createClient, expectErrorBody, gw, tokenRequest, type CreatedClient } from "./helpers";

/**
 * SMART v2 scopes end to end: token requests with SMART scopes, then the gateway and phi
 * (a real auxiliary worker with its own D1) allowing or refusing each operation.
 */
const FHIR = { "content-type": "application/fhir+json" };
let patientId = "";
let observationId = "";
let reader: CreatedClient;
let writer: CreatedClient;

async function smartToken(client: CreatedClient, scope: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await tokenRequest({ grant_type: "client_credentials", scope }, { authorization: basic(client.client_id, client.client_secret) });
  return { status: res.status, body: await res.json<Record<string, unknown>>() };
}

async function bearer(scope: string, client = writer): Promise<string> {
  const r = await smartToken(client, scope);
  if (r.status !== 200) throw new Error(`token ${scope}: ${r.status} ${JSON.stringify(r.body)}`);
  return String(r.body.access_token);
}

function call(tok: string, path: string, init: RequestInit = {}): Promise<Response> {
  return gw(path, { ...init, headers: { authorization: `Bearer ${tok}`, ...(init.headers as Record<string, string>) } });
}

async function expectRefused(res: Response, path: string, needs: string): Promise<void> {
  expect(res.status, path).toBe(403);
  const body = await expectErrorBody(res, path);
  expect(JSON.stringify(body)).toContain(needs);
}

beforeAll(async () => {
  // Seeded by a clinician of the default tenant, the tenant the SMART clients below are created in.
  const admin = await clientToken(await createClient({ name: "smart seeder", roles: ["clinician"] }), "phi:write phi:read");
  const p = await gw("/v1/phi/Patient", { method: "POST", headers: { authorization: `Bearer ${admin}`, ...FHIR }, body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Scopewell" }] }) });
  patientId = (await p.json<{ id: string }>()).id;
  const o = await gw("/v1/phi/Observation", {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, ...FHIR },
    body: JSON.stringify({ resourceType: "Observation", status: "final", code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] }, subject: { reference: `Patient/${patientId}` } }),
  });
  observationId = (await o.json<{ id: string }>()).id;
  reader = await createClient({ name: "smart reader", scopes: ["phi:read"] });
  writer = await createClient({ name: "smart writer", roles: ["clinician"] });
});

describe("token requests with SMART scopes", () => {
  it("grants them within the platform scopes and echoes them in scope", async () => {
    for (const scope of ["system/Patient.rs", "system/*.rs", "system/Patient.read", "system/*.read", "system/Observation.r system/Patient.s"]) {
      const r = await smartToken(reader, scope);
      expect(r.status, scope).toBe(200);
      expect(r.body.scope).toBe(scope);
    }
    for (const scope of ["system/Observation.cruds", "system/*.*", "system/*.cud", "system/Patient.write phi:read"]) {
      const r = await smartToken(writer, scope);
      expect(r.status, scope).toBe(200);
      expect(r.body.scope).toBe(scope);
    }
  });

  it("refuses beyond the platform scopes, other launch contexts and malformed scopes with invalid_scope", async () => {
    const cases: [CreatedClient, string, RegExp][] = [
      [reader, "system/Patient.c", /exceeds this client's platform scopes/],
      [reader, "system/*.cruds", /exceeds/],
      [reader, "system/Patient.write", /exceeds/],
      [writer, "patient/Patient.rs", /patient\/ and user\/ launch contexts are not/],
      [writer, "user/Observation.read", /launch contexts are not/],
      [writer, "system/Patient.xyz", /permissions must be/],
      [writer, "system/Patient.sr", /permissions must be/],
      [writer, "system/Condition.rs", /resource type this server does not hold/],
      [writer, "system/Observation.rs?category=laboratory", /Granular/],
      [writer, "system/Patient.rs launch", /invalid, unknown/],
    ];
    for (const [client, scope, text] of cases) {
      const r = await smartToken(client, scope);
      expect(r.status, scope).toBe(400);
      expect(r.body.error, scope).toBe("invalid_scope");
      expect(String(r.body.error_description), scope).toMatch(text);
    }
  });
});

describe("enforcement: resource type and interaction", () => {
  it("system/Patient.rs reads and searches Patients; Observations and every write get 403 OperationOutcome", async () => {
    const tok = await bearer("system/Patient.rs", reader);
    expect((await call(tok, `/v1/phi/Patient/${patientId}`)).status).toBe(200);
    expect((await call(tok, `/v1/phi/Patient/${patientId}/_history`)).status).toBe(200);
    expect((await call(tok, `/v1/phi/Patient/${patientId}/_history/1`)).status).toBe(200);
    const search = await call(tok, "/v1/phi/Patient?family=Scopewell");
    expect(search.status).toBe(200);
    expect((await search.json<{ entry?: unknown[] }>()).entry?.length).toBeGreaterThan(0);
    await expectRefused(await call(tok, `/v1/phi/Observation/${observationId}`), "/v1/phi/Observation/x", "system/Observation.r");
    await expectRefused(await call(tok, `/v1/phi/Observation?patient=${patientId}`), "/v1/phi/Observation", "system/Observation.s");
    // A write is refused at the gateway already: the token stands for phi:read only.
    const create = await call(tok, "/v1/phi/Patient", { method: "POST", headers: FHIR, body: JSON.stringify({ resourceType: "Patient" }) });
    expect(create.status).toBe(403);
    expect((await expectErrorBody(create, "/v1/phi/Patient")).code).toBe("insufficient_scope");
    // Neither the audit trail nor another service: SMART scopes grant FHIR data only.
    expect((await call(tok, `/v1/phi/Patient/${patientId}/$access-log`)).status).toBe(403);
    expect((await call(tok, "/v1/phi/audit")).status).toBe(403);
    expect((await call(tok, "/v1/payments/payment-methods/pm_x")).status).toBe(403);
  });

  it(".r without .s reads by id but does not search; .s without .r searches but does not read", async () => {
    const r = await bearer("system/Patient.r", reader);
    expect((await call(r, `/v1/phi/Patient/${patientId}`)).status).toBe(200);
    await expectRefused(await call(r, "/v1/phi/Patient?family=Scopewell"), "/v1/phi/Patient", "system/Patient.s");
    await expectRefused(await call(r, "/v1/phi/Patient/_search", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "family=Scopewell" }), "/v1/phi/Patient/_search", "system/Patient.s");
    const s = await bearer("system/Patient.s", reader);
    expect((await call(s, "/v1/phi/Patient?family=Scopewell")).status).toBe(200);
    await expectRefused(await call(s, `/v1/phi/Patient/${patientId}`), "/v1/phi/Patient/x", "system/Patient.r");
  });

  it("write letters: .c creates but does not update or delete; Observation.cruds writes Observations, not Patients", async () => {
    const c = await bearer("system/Patient.c");
    const created = await call(c, "/v1/phi/Patient", { method: "POST", headers: FHIR, body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Lettered" }] }) });
    expect(created.status).toBe(201);
    const id = (await created.json<{ id: string }>()).id;
    const update = JSON.stringify({ resourceType: "Patient", id, name: [{ family: "Lettered" }] });
    await expectRefused(await call(c, `/v1/phi/Patient/${id}`, { method: "PUT", headers: FHIR, body: update }), "/v1/phi/Patient/x", "system/Patient.u");
    await expectRefused(await call(c, `/v1/phi/Patient/${id}`, { method: "DELETE" }), "/v1/phi/Patient/x", "system/Patient.d");
    // A conditional create may answer with the match it found: it needs r and s too.
    const cond = await call(c, "/v1/phi/Patient", { method: "POST", headers: { ...FHIR, "if-none-exist": "family=Lettered" }, body: JSON.stringify({ resourceType: "Patient" }) });
    await expectRefused(cond, "/v1/phi/Patient", "system/Patient.r");
    const ud = await bearer("system/Patient.ud");
    expect((await call(ud, `/v1/phi/Patient/${id}`, { method: "PUT", headers: FHIR, body: update })).status).toBe(200);
    expect((await call(ud, `/v1/phi/Patient/${id}`, { method: "DELETE" })).status).toBe(204);

    const obs = await bearer("system/Observation.cruds");
    const o = await call(obs, "/v1/phi/Observation", {
      method: "POST",
      headers: FHIR,
      body: JSON.stringify({ resourceType: "Observation", status: "final", code: { text: "x" }, subject: { reference: `Patient/${patientId}` } }),
    });
    expect(o.status).toBe(201);
    expect((await call(obs, `/v1/phi/Observation?patient=${patientId}`)).status).toBe(200);
    await expectRefused(await call(obs, "/v1/phi/Patient", { method: "POST", headers: FHIR, body: JSON.stringify({ resourceType: "Patient" }) }), "/v1/phi/Patient", "system/Patient.c");
    await expectRefused(await call(obs, `/v1/phi/Patient/${patientId}`), "/v1/phi/Patient/x", "system/Patient.r");
  });

  it("_include and _revinclude need the included type's permission: refused, not silently dropped", async () => {
    const patients = await bearer("system/Patient.rs", reader);
    await expectRefused(await call(patients, `/v1/phi/Patient?_id=${patientId}&_revinclude=Observation:patient`), "/v1/phi/Patient", "system/Observation.s");
    const observations = await bearer("system/Observation.rs", reader);
    await expectRefused(await call(observations, `/v1/phi/Observation?patient=${patientId}&_include=Observation:patient`), "/v1/phi/Observation", "system/Patient.r");
    const both = await bearer("system/*.rs", reader);
    const rev = await call(both, `/v1/phi/Patient?_id=${patientId}&_revinclude=Observation:patient`);
    expect(rev.status).toBe(200);
    const entries = (await rev.json<{ entry: { resource: { resourceType: string } }[] }>()).entry.map((e) => e.resource.resourceType);
    expect(entries).toEqual(expect.arrayContaining(["Patient", "Observation"]));
    expect((await call(both, `/v1/phi/Observation?patient=${patientId}&_include=Observation:patient`)).status).toBe(200);
  });

  it("v1 scopes and wildcards: system/*.read reads everything, system/*.* writes too", async () => {
    const read = await bearer("system/*.read", reader);
    expect((await call(read, `/v1/phi/Observation/${observationId}`)).status).toBe(200);
    expect((await call(read, "/v1/phi/Patient", { method: "POST", headers: FHIR, body: JSON.stringify({ resourceType: "Patient" }) })).status).toBe(403);
    const all = await bearer("system/*.*");
    expect((await call(all, "/v1/phi/Patient", { method: "POST", headers: FHIR, body: JSON.stringify({ resourceType: "Patient" }) })).status).toBe(201);
    expect((await call(all, `/v1/phi/Observation/${observationId}`)).status).toBe(200);
  });
});
