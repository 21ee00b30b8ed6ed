// fhir-kit-client (https://github.com/Vermonster/fhir-kit-client), unmodified, against the gateway as a health-IT
// team would use it: discovery, create, read, update, conditional update, search followed page by page with
// nextPage(), and a transaction. Every resource and Bundle it receives is checked by @medplum/core's validator
// (e2e/fhir-validate.mjs), not by the platform's own schemas.
import { randomUUID } from "node:crypto";
import { Client } from "fhir-kit-client";
import { loadFhirDefinitions, validatorFor } from "../fhir-validate.mjs";

export const name = "fhir-kit-client: metadata, CRUD, paged search, transaction through the gateway";

const PAGE = 3;
const PATIENTS = 8;

/** Letters only: family names are matched exactly after normalization, so each run owns its own. */
function uniqueFamily(prefix) {
  return prefix + [...randomUUID().replaceAll("-", "")].map((c) => String.fromCharCode(97 + (parseInt(c, 16) % 26))).join("");
}

/** The HTTP status fhir-kit-client attaches to the error it throws for a non-2xx answer. */
async function statusOf(promise) {
  try {
    await promise;
    return 200;
  } catch (err) {
    if (typeof err?.response?.status !== "number") throw err;
    return err.response.status;
  }
}

export default async function (ctx) {
  const { assert } = ctx;
  loadFhirDefinitions();
  const v = validatorFor(ctx);
  const baseUrl = `${ctx.base}/v1/phi`;

  // Discovery without a token: the client races smart-configuration, metadata and openid-configuration.
  const anonymous = new Client({ baseUrl });
  const auth = await anonymous.smartAuthMetadata();
  assert.equal(auth.tokenUrl?.href, `${ctx.base}/oauth/token`);
  const capability = v.valid(await anonymous.capabilityStatement(), "CapabilityStatement");
  assert.equal(capability.fhirVersion, "4.0.1");
  const patientCaps = capability.rest[0].resource.find((r) => r.type === "Patient");
  for (const code of ["read", "create", "update", "search-type"]) assert.ok(patientCaps.interaction.some((i) => i.code === code), code);

  const app = await ctx.createClient({ name: "e2e fhir-kit-client", roles: ["clinician"] });
  const client = new Client({ baseUrl, bearerToken: await ctx.clientToken(app.client_id, app.client_secret, "phi:read phi:write") });

  // create, read, update
  const family = uniqueFamily("Kit");
  const system = `urn:uuid:${randomUUID()}`;
  const patient = (i) => ({
    resourceType: "Patient",
    identifier: [{ system, value: `p${i}` }],
    name: [{ family, given: [`Given${String.fromCharCode(65 + i)}`] }],
    gender: i % 2 ? "female" : "male",
    birthDate: `19${50 + i}-0${1 + (i % 9)}-1${i % 10}`,
  });
  const first = v.valid(await client.create({ resourceType: "Patient", body: patient(0) }), "created Patient");
  const created = Client.httpFor(first).response;
  assert.equal(created.status, 201);
  assert.match(created.headers.get("location") ?? "", new RegExp(`Patient/${first.id}/_history/1$`));
  assert.equal(first.meta.versionId, "1");
  const read = v.valid(await client.read({ resourceType: "Patient", id: first.id }), "read Patient");
  assert.deepEqual(read.name, first.name);
  const updated = v.valid(
    await client.update({ resourceType: "Patient", id: first.id, body: { ...read, active: true } }),
    "updated Patient",
  );
  assert.equal(updated.meta.versionId, "2");
  assert.equal(updated.active, true);
  const vread = v.valid(await client.vread({ resourceType: "Patient", id: first.id, version: "1" }), "vread Patient");
  assert.equal(vread.active, undefined);
  // Conditional update (PUT Patient?identifier=system|value): one match, so that resource gets a new version.
  const conditional = v.valid(
    await client.update({ resourceType: "Patient", searchParams: { identifier: `${system}|p0` }, body: { ...patient(0), active: false } }),
    "conditionally updated Patient",
  );
  assert.equal(conditional.id, first.id);
  assert.equal(conditional.meta.versionId, "3");
  const gone = await statusOf(client.read({ resourceType: "Patient", id: randomUUID() }));
  assert.equal(gone, 404);

  // Search with paging: POST _search (the name stays out of the URL), then the client follows `next` as given.
  const ids = [first.id];
  for (let i = 1; i < PATIENTS; i++) ids.push(v.valid(await client.create({ resourceType: "Patient", body: patient(i) }), "created Patient").id);
  let page = v.valid(
    await client.search({ resourceType: "Patient", searchParams: { family, _count: PAGE, _total: "accurate" }, options: { postSearch: true } }),
    "searchset Bundle",
  );
  assert.equal(page.type, "searchset");
  assert.equal(page.total, PATIENTS);
  const seen = [];
  let pages = 0;
  for (;;) {
    pages++;
    assert.ok(page.entry.length <= PAGE, `page of ${page.entry.length}`);
    for (const e of page.entry) {
      assert.equal(e.search?.mode, "match");
      assert.equal(e.fullUrl, `${baseUrl}/Patient/${e.resource.id}`);
      seen.push(e.resource.id);
    }
    // A write between pages does not move a patient already served, nor add one after the first page.
    if (pages === 1) {
      await client.update({ resourceType: "Patient", id: page.entry[0].resource.id, body: { ...page.entry[0].resource, active: true } });
      v.valid(await client.create({ resourceType: "Patient", body: patient(PATIENTS) }), "created Patient");
    }
    const next = page.link.find((l) => l.relation === "next");
    if (!next) break;
    assert.ok(next.url.startsWith(`${baseUrl}/Patient?`), "next link is absolute on the FHIR base");
    page = v.valid(await client.nextPage({ bundle: page }), "searchset Bundle (next page)");
  }
  assert.equal(pages, Math.ceil(PATIENTS / PAGE));
  assert.equal(new Set(seen).size, seen.length, "no patient served twice");
  assert.deepEqual([...seen].sort(), [...ids].sort(), "every patient served, none added");
  // A GET search the client builds itself, by a server id (no PHI in the URL).
  const byId = v.valid(await client.search({ resourceType: "Patient", searchParams: { _id: first.id } }), "searchset Bundle (GET)");
  assert.deepEqual(byId.entry.map((e) => e.resource.id), [first.id]);
  ctx.log(`fhir-kit-client: ${PATIENTS} patients in ${pages} pages of ${PAGE}; ${v.count} resources and Bundles validated so far`);

  await transaction(ctx, client, v, uniqueFamily("Tx"));
  ctx.log(`fhir-kit-client: ${v.count} resources and Bundles validated by @medplum/core`);
}

/**
 * FHIR R4 transaction (http.html#transaction): POST [base] with a Bundle of type transaction, a Patient and an
 * Observation whose subject is the Patient's urn:uuid fullUrl. All entries commit or none do; the answer is a
 * transaction-response Bundle, one entry per request entry in the same order, each with its status and location.
 */
async function transaction(ctx, client, v, family) {
  const { assert } = ctx;
  const patientUrl = `urn:uuid:${randomUUID()}`;
  const bundle = (subject) => ({
    resourceType: "Bundle",
    type: "transaction",
    entry: [
      {
        fullUrl: patientUrl,
        resource: { resourceType: "Patient", name: [{ family, given: ["Ada"] }], birthDate: "1970-02-03" },
        request: { method: "POST", url: "Patient" },
      },
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: "Observation",
          status: "final",
          code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
          subject: { reference: subject },
          effectiveDateTime: "2026-11-30T10:00:00Z",
          valueQuantity: { value: 72, unit: "beats/minute", system: "http://unitsofmeasure.org", code: "/min" },
        },
        request: { method: "POST", url: "Observation" },
      },
    ],
  });
  // What is sent is valid FHIR too, so a refusal is the server's doing.
  v.valid(bundle(patientUrl), "transaction Bundle (request)");

  const response = v.valid(await client.transaction({ body: bundle(patientUrl) }), "transaction-response Bundle");
  assert.equal(Client.httpFor(response).response.status, 200);
  assert.equal(response.type, "transaction-response");
  assert.equal(response.entry.length, 2);
  const [patientEntry, observationEntry] = response.entry;
  for (const e of response.entry) assert.match(e.response.status, /^201\b/);
  const patientId = patientEntry.response.location.match(/(?:^|\/)Patient\/([^/]+)\/_history\/1$/)?.[1];
  const observationId = observationEntry.response.location.match(/(?:^|\/)Observation\/([^/]+)\/_history\/1$/)?.[1];
  assert.ok(patientId && observationId, `locations: ${patientEntry.response.location}, ${observationEntry.response.location}`);
  const observation = v.valid(await client.read({ resourceType: "Observation", id: observationId }), "read Observation");
  assert.match(observation.subject.reference, new RegExp(`(^|/)Patient/${patientId}$`), "the urn:uuid reference was resolved to the new Patient");
  const found = v.valid(await client.search({ resourceType: "Patient", searchParams: { family }, options: { postSearch: true } }), "searchset Bundle");
  assert.deepEqual(found.entry.map((e) => e.resource.id), [patientId]);

  // All or nothing: an Observation about a patient that does not exist fails the whole transaction, with an
  // OperationOutcome, and its Patient is not created either (checked after a success, so a 404 for a route
  // that does not exist cannot pass for a refusal).
  const orphan = bundle(`Patient/${randomUUID()}`);
  orphan.entry[0].resource.name[0].given = ["Orphan"];
  const refused = await client.transaction({ body: orphan }).then(
    () => assert.fail("a transaction with a dangling reference was accepted"),
    (err) => err,
  );
  assert.ok(refused.response?.status >= 400 && refused.response.status < 500, `a failing transaction answers 4xx, got ${refused.response?.status}`);
  v.valid(refused.response.data, "OperationOutcome of a refused transaction");
  assert.equal(refused.response.data.resourceType, "OperationOutcome");
  const after = v.valid(await client.search({ resourceType: "Patient", searchParams: { family }, options: { postSearch: true } }), "searchset Bundle");
  assert.deepEqual(after.entry.map((e) => e.resource.id), [patientId], "nothing of the refused transaction was committed");
}
