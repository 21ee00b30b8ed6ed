// Load without loss, PHI: LOAD_PATIENTS (1,000) concurrent Patient creations through the gateway, all
// launched at once over a bounded keep-alive pool. Afterwards every one is readable with the content it
// was created with, exactly one Patient exists per identifier, and the audit trail holds exactly one
// create record per Patient (and the chain verifies). Each create is a FHIR conditional create
// (If-None-Exist on its own identifier), so a retry after a network error cannot make a second Patient.
export const name = "load: concurrent Patient creations, all readable, one audit record each";

const FHIR = "application/fhir+json";
const SYSTEM = "urn:e2e:load";
const COUNT = Number(process.env.LOAD_PATIENTS ?? 1000);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 64);
/** Bound on all of the flow's pooled requests. */
const DEADLINE_MS = Number(process.env.LOAD_PATIENTS_DEADLINE_MS ?? 300_000);

/** A distinct, valid FHIR R4 Patient (synthetic, no real person). */
function patient(tag, i) {
  return {
    resourceType: "Patient",
    identifier: [{ system: SYSTEM, value: `${tag}-${i}` }],
    active: true,
    name: [{ use: "official", family: `Loadtest${tag}`, given: [`P${i}`] }],
    gender: ["female", "male", "other", "unknown"][i % 4],
    birthDate: `${1940 + (i % 80)}-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}`,
    telecom: [{ system: "phone", value: `555-01${String(i % 100).padStart(2, "0")}`, use: "home" }],
  };
}

const seconds = (t0) => ((performance.now() - t0) / 1000).toFixed(1);

export default async function (ctx) {
  const { assert } = ctx;
  const t0 = performance.now();
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const clinician = await ctx.createClient({ name: "e2e load clinician", roles: ["clinician"] });
  const token = await ctx.clientToken(clinician.client_id, clinician.client_secret, "phi:read phi:write");
  const auditor = await ctx.createClient({ name: "e2e load auditor", roles: ["auditor"] });
  const auditToken = await ctx.clientToken(auditor.client_id, auditor.client_secret, "audit:read");
  const headers = (i) => ({
    "content-type": FHIR,
    "x-purpose-of-use": "TREAT",
    "if-none-exist": new URLSearchParams({ identifier: `${SYSTEM}|${tag}-${i}` }).toString(),
  });
  const pool = ctx.pool(CONNECTIONS, { timeoutMs: 120_000, deadlineMs: DEADLINE_MS });
  try {
    // 1. All creations at once; at most CONNECTIONS on the wire. Conditional create makes a retry safe.
    const bodies = Array.from({ length: COUNT }, (_, i) => patient(tag, i));
    const tCreate = performance.now();
    const created = await Promise.all(
      bodies.map((body, i) => pool.json("/v1/phi/Patient", { method: "POST", token, body, headers: headers(i), retry: 2 })),
    );
    const createSeconds = seconds(tCreate);
    const statuses = tally(created.map((r) => r.status));
    const retried = created.filter((r) => r.attempts > 1);
    // 201 each; a 200 is acceptable only as the answer to a retry whose first attempt had already created it.
    for (const [i, r] of created.entries()) {
      const ok = r.status === 201 || (r.status === 200 && r.attempts > 1);
      assert.ok(ok, `create ${i}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    assert.equal(created.filter((r) => r.status === 201).length + retried.filter((r) => r.status === 200).length, COUNT);
    const ids = created.map((r) => r.body.id);
    assert.equal(new Set(ids).size, COUNT, "every creation got its own id");
    ctx.log(
      `${COUNT} creations in ${createSeconds}s (${(COUNT / Number(createSeconds)).toFixed(0)}/s), statuses ${JSON.stringify(statuses)}, ` +
        `peak ${pool.stats.peak} requests on the wire over ${pool.stats.sockets.size} connections, ${pool.stats.retries} network retries (${pool.stats.proxyLost} of them requests the dev proxy lost)`,
    );

    // 2. Every one reads back with the content it was created with (and the server's id and meta).
    const tRead = performance.now();
    const read = await Promise.all(ids.map((id) => pool.json(`/v1/phi/Patient/${id}`, { token, headers: { "x-purpose-of-use": "TREAT" }, retry: 2 })));
    for (const [i, r] of read.entries()) {
      assert.equal(r.status, 200, `read ${ids[i]}: ${r.status}`);
      assert.deepEqual(r.body, created[i].body, `read ${ids[i]} differs from what its creation returned`);
      const { id, meta, ...content } = r.body;
      assert.equal(id, ids[i]);
      assert.equal(meta.versionId, "1");
      assert.deepEqual(content, bodies[i], `read ${ids[i]} differs from what was sent`);
    }
    const readSeconds = seconds(tRead);

    // 3. Exactly one Patient per identifier (what makes the conditional-create retry safe): the run's
    // family name matches exactly the COUNT Patients created, one per identifier, in pages of 100.
    const tSearch = performance.now();
    const matched = [];
    let next = "/v1/phi/Patient/_search";
    let searchPages = 0;
    let form = new URLSearchParams({ family: `Loadtest${tag}`, _count: "100" }).toString();
    for (; next; searchPages++) {
      assert.ok(searchPages <= COUNT / 100 + 1, "search paging did not end");
      const r = form
        ? await ctx.json(next, { method: "POST", token, body: form, headers: { "content-type": "application/x-www-form-urlencoded", "x-purpose-of-use": "TREAT" } })
        : await ctx.json(next, { token, headers: { "x-purpose-of-use": "TREAT" } });
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
      matched.push(...(r.body.entry ?? []).map((e) => e.resource));
      form = undefined;
      // `next` is absolute (FHIR requires it): the path is what this run's helpers take.
      const link = r.body.link.find((l) => l.relation === "next")?.url;
      next = link && new URL(link).pathname + new URL(link).search;
    }
    assert.equal(matched.length, COUNT, `the run's family name matches ${matched.length} Patients`);
    assert.deepEqual(new Set(matched.map((m) => m.id)), new Set(ids));
    const perIdentifier = tally(matched.map((m) => m.identifier[0].value));
    assert.equal(Object.keys(perIdentifier).length, COUNT);
    assert.ok(Object.values(perIdentifier).every((n) => n === 1), "one Patient per identifier");
    // A conditional create sent again (what a client's retry does) returns the existing Patient.
    const again = await Promise.all(
      bodies.slice(0, 20).map((body, i) => pool.json("/v1/phi/Patient", { method: "POST", token, body, headers: headers(i) })),
    );
    again.forEach((r, i) => {
      assert.equal(r.status, 200, `repeated conditional create ${i}: ${r.status}`);
      assert.equal(r.body.id, ids[i]);
    });
    const searchSeconds = seconds(tSearch);

    // 4. The audit trail: exactly one create record per Patient, by this client, and nothing else created.
    const tAudit = performance.now();
    const records = [];
    for (let cursor = 0, pages = 0; cursor !== null; pages++) {
      assert.ok(pages < 100, "audit paging did not end");
      const page = await ctx.json(`/v1/phi/audit?actor=${encodeURIComponent(clinician.client_id)}&limit=500&cursor=${cursor}`, { token: auditToken });
      assert.equal(page.status, 200, JSON.stringify(page.body));
      records.push(...page.body.data);
      cursor = page.body.next_cursor;
    }
    const creates = records.filter((r) => r.action === "create");
    const perId = tally(creates.map((r) => r.resource_id));
    for (const id of ids) assert.equal(perId[id], 1, `Patient ${id} has ${perId[id] ?? 0} create records`);
    assert.equal(creates.length, COUNT, `create records by the load client: ${creates.length}`);
    assert.ok(creates.every((r) => r.resource_type === "Patient" && r.outcome === "success" && r.patient_ids === r.resource_id));
    const reads = tally(records.filter((r) => r.action === "read").map((r) => r.resource_id));
    // One read record per GET above, plus one per repeated conditional create.
    ids.forEach((id, i) => assert.equal(reads[id], i < 20 ? 2 : 1, `Patient ${id}: ${reads[id]} read records`));
    assert.equal(records.filter((r) => r.action === "search").length, searchPages);
    assert.equal(records.length, COUNT * 2 + 20 + searchPages, `records by the load client: ${JSON.stringify(tally(records.map((r) => r.action)))}`);
    const verify = await ctx.json("/v1/phi/audit/verify", { token: auditToken });
    assert.equal(verify.status, 200);
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    const auditSeconds = seconds(tAudit);
    ctx.log(
      `read back ${COUNT} in ${readSeconds}s; search of the run (${searchPages} pages) + 20 repeated conditional creates in ${searchSeconds}s; ` +
        `audit: ${creates.length} create records (1 per Patient), chain of ${verify.body.records} verified, in ${auditSeconds}s; total ${seconds(t0)}s`,
    );
  } finally {
    pool.close();
  }
}

function tally(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
