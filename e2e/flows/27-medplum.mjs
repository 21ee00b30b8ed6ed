// @medplum/core's MedplumClient, unmodified, against the gateway: client-credentials login at our token endpoint,
// create, read, search (one page, then every page through the client's own paging), and a Bulk Data export it
// kicks off, polls to the manifest and downloads. Every resource and Bundle it receives, each NDJSON line
// included, is checked by @medplum/core's validator (e2e/fhir-validate.mjs), not by the platform's own schemas.
import { randomUUID } from "node:crypto";
import { ClientStorage, MedplumClient, MemoryStorage } from "@medplum/core";
import { loadFhirDefinitions, validatorFor } from "../fhir-validate.mjs";

export const name = "@medplum/core MedplumClient: client-credentials login, CRUD, search, bulk export through the gateway";

const PATIENTS = 5;

function uniqueFamily(prefix) {
  return prefix + [...randomUUID().replaceAll("-", "")].map((c) => String.fromCharCode(97 + (parseInt(c, 16) % 26))).join("");
}

export default async function (ctx) {
  const { assert } = ctx;
  loadFhirDefinitions();
  const v = validatorFor(ctx);
  const app = await ctx.createClient({ name: "e2e medplum", roles: ["clinician"] });

  const medplum = new MedplumClient({
    baseUrl: ctx.base,
    fhirUrlPath: "v1/phi",
    tokenUrl: "oauth/token",
    // Node has no window.localStorage; the client keeps its login in memory instead.
    storage: new ClientStorage(new MemoryStorage()),
    fetch: (url, init) => fetch(url, init),
  });
  // client_credentials with client_secret_post, no scope: the client's allowed scopes (RFC 6749 3.3).
  await medplum.startClientLogin(app.client_id, app.client_secret);
  assert.ok(medplum.getAccessToken(), "logged in");
  assert.equal(medplum.fhirUrl("Patient").toString(), `${ctx.base}/v1/phi/Patient`);

  const family = uniqueFamily("Med");
  const since = new Date(Date.now() - 1000).toISOString();
  const ids = [];
  for (let i = 0; i < PATIENTS; i++) {
    const p = v.valid(
      await medplum.createResource({ resourceType: "Patient", name: [{ family, given: [`Given${String.fromCharCode(65 + i)}`] }], birthDate: `198${i}-05-0${1 + i}` }),
      "created Patient",
    );
    ids.push(p.id);
  }
  const observation = v.valid(
    await medplum.createResource({
      resourceType: "Observation",
      status: "final",
      code: { coding: [{ system: "http://loinc.org", code: "29463-7", display: "Body weight" }] },
      subject: { reference: `Patient/${ids[0]}` },
      effectiveDateTime: "2026-11-30T09:00:00Z",
      valueQuantity: { value: 70.5, unit: "kg", system: "http://unitsofmeasure.org", code: "kg" },
    }),
    "created Observation",
  );
  const read = v.valid(await medplum.readResource("Patient", ids[0]), "read Patient");
  assert.equal(read.name[0].family, family);
  const readObs = v.valid(await medplum.readResource("Observation", observation.id), "read Observation");
  assert.equal(readObs.subject.reference, `Patient/${ids[0]}`);

  // searchResources: one page of resources, with the Bundle it came in.
  const firstPage = await medplum.searchResources("Patient", { family, _count: 2, _total: "accurate" });
  v.valid(firstPage.bundle, "searchset Bundle");
  assert.equal(firstPage.length, 2);
  assert.equal(firstPage.bundle.total, PATIENTS);
  const byPatient = await medplum.searchResources("Observation", { patient: ids[0] });
  v.valid(byPatient.bundle, "searchset Bundle (Observation)");
  assert.deepEqual(byPatient.map((o) => o.id), [observation.id]);
  // searchResourcePages: the client's own paging over `next` (it re-issues the link's query on the type).
  const paged = [];
  for await (const page of medplum.searchResourcePages("Patient", { family, _count: 2 })) {
    v.valid(page.bundle, "searchset Bundle (page)");
    paged.push(...page.map((p) => p.id));
  }
  assert.deepEqual([...paged].sort(), [...ids].sort(), "every patient once, over every page");
  ctx.log(`MedplumClient: ${PATIENTS} patients over ${Math.ceil(PATIENTS / 2)} pages; ${v.count} resources and Bundles validated so far`);

  await bulkExport(ctx, medplum, v, { since, ids, observationId: observation.id });
  ctx.log(`MedplumClient: ${v.count} resources and Bundles validated by @medplum/core`);
}

/**
 * Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html): kick-off with `Prefer: respond-async`,
 * 202 with an absolute Content-Location, polling (202 while in progress), then 200 with the manifest; files of
 * one resource type each, NDJSON, fetched with the bearer token when `requiresAccessToken` is true.
 */
async function bulkExport(ctx, medplum, v, { since, ids, observationId }) {
  const { assert } = ctx;
  const manifest = await medplum.bulkExport("", "Patient,Observation", since, {
    pollStatusOnAccepted: true,
    pollStatusPeriod: 500,
    signal: AbortSignal.timeout(120_000),
  });
  assert.equal(typeof manifest, "object", `manifest: ${String(manifest).slice(0, 200)}`);
  assert.equal(manifest.requiresAccessToken, true);
  assert.ok(!Number.isNaN(Date.parse(manifest.transactionTime)), "transactionTime is an instant");
  assert.ok(manifest.request.startsWith(`${ctx.base}/v1/phi/$export`), `request: ${manifest.request}`);
  assert.ok(Array.isArray(manifest.output) && Array.isArray(manifest.error));
  const seen = { Patient: new Set(), Observation: new Set() };
  for (const file of manifest.output) {
    assert.ok(file.type in seen, `an output file of type ${file.type}, not asked for`);
    assert.ok(file.url.startsWith(`${ctx.base}/`), "file URLs are absolute on the gateway");
    // requiresAccessToken: the file is refused without the token ...
    const anonymous = await fetch(file.url);
    await anonymous.arrayBuffer();
    assert.equal(anonymous.status, 401, "an export file without a token");
    // ... and served with it (the client adds its bearer token to URLs under its base).
    const res = await medplum.downloadResponse(file.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/(fhir\+)?ndjson/);
    const lines = (await res.text()).split("\n").filter((l) => l.trim() !== "");
    if (typeof file.count === "number") assert.equal(lines.length, file.count, `${file.type} file count`);
    for (const line of lines) {
      const resource = v.valid(JSON.parse(line), `exported ${file.type}`);
      assert.equal(resource.resourceType, file.type);
      seen[file.type].add(resource.id);
    }
  }
  for (const id of ids) assert.ok(seen.Patient.has(id), "every patient created since _since is exported");
  assert.ok(seen.Observation.has(observationId), "the observation is exported");
  for (const file of manifest.error) {
    const res = await medplum.downloadResponse(file.url);
    for (const line of (await res.text()).split("\n").filter((l) => l.trim() !== "")) v.valid(JSON.parse(line), "export OperationOutcome");
  }
  ctx.log(`bulk export: ${seen.Patient.size} Patient, ${seen.Observation.size} Observation exported`);
}
