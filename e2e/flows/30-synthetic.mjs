// synthetic-phi through the gateway: a Bundle (every resource checked against the official
// FHIR R4 JSON schema), an NDJSON stream (first line before the rest, byte-identical reruns,
// random access by offset), scope refusals, and loading into phi.
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { TextDecoder } from "node:util";

import { fhirValidator } from "../fhir-schema.mjs";

export const name = "synthetic-phi: bundle, NDJSON stream, load into phi";



const sha = (text) => createHash("sha256").update(text).digest("hex");
const lines = (text) => text.split("\n").filter(Boolean);

export default async function (ctx) {
  const { assert } = ctx;
  const tester = await ctx.createClient({ name: "e2e synthetic tester", roles: ["tester"] });
  const genToken = await ctx.clientToken(tester.client_id, tester.client_secret, "synthetic:generate");
  const auth = { authorization: `Bearer ${genToken}` };

  // 1. Bundle: valid FHIR R4 (official schema), test-data labels, a Provenance.
  const bundle = await ctx.json("/v1/synthetic/patients?count=5&seed=e2e", { token: genToken });
  assert.equal(bundle.status, 200, JSON.stringify(bundle.body));
  assert.equal(bundle.headers.get("content-type"), "application/fhir+json");
  assert.equal(bundle.body.resourceType, "Bundle");
  assert.equal(bundle.body.type, "collection");
  const validate = fhirValidator();
  assert.ok(validate(bundle.body), `Bundle is not valid FHIR R4: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  for (const { resource } of bundle.body.entry) {
    assert.ok(validate(resource), `${resource.resourceType} is not valid FHIR R4: ${JSON.stringify(validate.errors?.slice(0, 3))}`);
    assert.ok(resource.meta.security.some((s) => s.code === "HTEST"));
  }
  assert.equal(bundle.body.entry.at(-1).resource.resourceType, "Provenance");
  assert.equal(bundle.body.entry.filter((e) => e.resource.resourceType === "Patient").length, 5);

  // 2. NDJSON: the first chunk arrives and is a Patient line before we read the rest.
  const res = await ctx.fetch("/v1/synthetic/patients?count=2000&seed=e2e&format=ndjson", { headers: auth });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/fhir+ndjson");
  const reader = res.body.getReader();
  const first = await reader.read();
  assert.ok(new TextDecoder().decode(first.value).startsWith('{"resourceType":"Patient"'));
  const chunks = [first.value];
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  const all = lines(text).map((l) => JSON.parse(l));
  assert.equal(all.filter((r) => r.resourceType === "Patient").length, 2000);
  for (const r of all.slice(0, 200)) assert.ok(validate(r), `${r.resourceType} invalid: ${JSON.stringify(validate.errors?.slice(0, 3))}`);

  // Byte-identical rerun, and patient 1999 alone equals the last patient of the full run.
  const again = await ctx.fetch("/v1/synthetic/patients?count=2000&seed=e2e&format=ndjson", { headers: auth });
  assert.equal(sha(await again.text()), sha(text));
  const lone = await ctx.fetch("/v1/synthetic/patients?count=1&offset=1999&seed=e2e&format=ndjson", { headers: auth });
  const loneLines = lines(await lone.text());
  const all2 = lines(text);
  const lastPatient = all2.findLastIndex((l) => l.startsWith('{"resourceType":"Patient"'));
  assert.deepEqual(loneLines, all2.slice(lastPatient));

  // 3. Limits named; loading needs phi:write besides synthetic:generate (the gateway says 403).
  const tooMany = await ctx.json("/v1/synthetic/patients?count=1001", { token: genToken });
  assert.equal(tooMany.status, 400);
  assert.equal(tooMany.body.limit, 1000);
  const noWrite = await ctx.json("/v1/synthetic/load", { method: "POST", token: genToken, body: { count: 1, seed: "e2e-load" } });
  assert.equal(noWrite.status, 403);

  // 4. Load into phi through its binding.
  const loader = await ctx.createClient({ name: "e2e synthetic loader", roles: ["tester", "clinician"] });
  const loadToken = await ctx.clientToken(loader.client_id, loader.client_secret, "synthetic:generate phi:write phi:read");
  const load = () => ctx.json("/v1/synthetic/load", { method: "POST", token: loadToken, body: { count: 5, seed: "e2e-load" } });
  const probe = await ctx.json("/v1/phi/Patient?_count=1", { token: loadToken });
  const phiServesPatients = !(probe.status === 404 && probe.body?.code === "not_found");
  const firstLoad = await load();
  if (phiServesPatients) {
    assert.equal(firstLoad.status, 200, JSON.stringify(firstLoad.body));
    assert.equal(firstLoad.body.created.length + firstLoad.body.existing.length, 5);
    const rerun = await load();
    assert.equal(rerun.status, 200, JSON.stringify(rerun.body));
    assert.equal(rerun.body.created.length, 0, "a rerun of the same seed must not create patients");
    const ids = (r) => [...r.created, ...r.existing].sort((a, b) => a.index - b.index).map((x) => x.id);
    assert.deepEqual(ids(rerun.body), ids(firstLoad.body));
    const read = await ctx.json(`/v1/phi/Patient/${ids(rerun.body)[0]}`, { token: loadToken });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.ok(read.body.identifier.some((i) => i.value === "e2e-load:0"));
  } else {
    // phi's Patient routes are not merged into this branch yet: the load reaches phi (through
    // the binding, with a re-signed principal) and reports its 404 per patient.
    ctx.log("note: phi does not serve /v1/phi/Patient here yet; checked the partial-failure report only");
    assert.equal(firstLoad.status, 502, JSON.stringify(firstLoad.body));
    assert.equal(firstLoad.body.code, "load_incomplete");
    assert.equal(firstLoad.body.report.failed[0].status, 404);
    assert.equal(firstLoad.body.report.created.length, 0);
  }
}
