import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, BASE, call, createPatient, expectValidFhir, json, patient } from "./helpers";
import { observation, outcomeCode, postBundle, postCounted, tableCounts, txn, urn, type BundleOut } from "./bundle-helpers";

const SSN = "http://hl7.org/fhir/sid/us-ssn";

describe("transaction Bundles (POST /v1/phi)", () => {
  it("commits every entry in one D1 batch, resolving urn:uuid references, with one audit record per entry", async () => {
    const p = urn();
    const before = (await auditRows()).length;
    const body = txn("transaction", [
      { fullUrl: urn(), resource: observation(p, "pulse"), request: { method: "POST", url: "Observation" } },
      { fullUrl: p, resource: patient("Txnfamily"), request: { method: "POST", url: "Patient" } },
      { resource: observation(p, "weight"), request: { method: "POST", url: "Observation" } },
    ]);
    const { res, roundTrips } = await postCounted(body);
    expect(res.status).toBe(200);
    // Plain creates need no read: the data and the three records are one batch, one round trip.
    expect(roundTrips).toBe(1);
    const out = await json<BundleOut>(res);
    await expectValidFhir(out);
    expect(out.type).toBe("transaction-response");
    const entries = out.entry ?? [];
    expect(entries.map((e) => e.response.status)).toEqual(["201 Created", "201 Created", "201 Created"]);
    const patientId = String(entries[1]?.resource?.id);
    expect(entries[1]?.response.location).toBe(`https://phi.internal/v1/phi/Patient/${patientId}/_history/1`);
    expect(entries[1]?.response.etag).toBe('W/"1"');
    expect(entries[1]?.fullUrl).toBe(`https://phi.internal/v1/phi/Patient/${patientId}`);
    // The placeholder is rewritten to the new Patient everywhere, in what is stored too.
    for (const i of [0, 2]) {
      const obsId = String(entries[i]?.resource?.id);
      expect(entries[i]?.resource?.subject).toEqual({ reference: `Patient/${patientId}` });
      const stored = await json(await call(`/Observation/${obsId}`));
      expect(stored.subject).toEqual({ reference: `Patient/${patientId}` });
    }
    const search = await json<{ total?: number }>(await call(`/Observation?patient=${patientId}`));
    expect(search.total).toBe(2);
    const rows = (await auditRows()).slice(before, before + 3);
    expect(rows.map((r) => [r.action, r.resource_type, r.outcome])).toEqual([
      ["create", "Patient", "success"],
      ["create", "Observation", "success"],
      ["create", "Observation", "success"],
    ]);
    // One request: the three records share its id, and each names the patient concerned.
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(1);
    expect(rows.every((r) => r.patient_ids === patientId)).toBe(true);
  });

  it("processes DELETE, POST, PUT, GET in that order, with If-Match, in one read wave and one write batch", async () => {
    const keep = await createPatient(patient("Txnorder"));
    const gone = await createPatient(patient("Txngone"));
    const updated = { ...keep.resource, gender: "other" };
    const { res, roundTrips } = await postCounted(
      txn("transaction", [
        { request: { method: "GET", url: `Patient/${keep.id}` } },
        { resource: updated, request: { method: "PUT", url: `Patient/${keep.id}`, ifMatch: 'W/"1"' } },
        { request: { method: "DELETE", url: `Patient/${gone.id}` } },
        { resource: observation(`Patient/${keep.id}`), request: { method: "POST", url: "Observation" } },
      ]),
    );
    expect(res.status).toBe(200);
    expect(roundTrips).toBe(2);
    const entries = (await json<BundleOut>(res)).entry ?? [];
    expect(entries.map((e) => e.response.status)).toEqual(["200 OK", "200 OK", "204 No Content", "201 Created"]);
    // The GET runs last: it sees the update of the same transaction.
    expect(entries[0]?.resource).toMatchObject({ gender: "other", meta: { versionId: "2" } });
    expect(entries[1]?.response.etag).toBe('W/"2"');
    expect(entries[2]?.response.etag).toBe('W/"2"');
    expect((await call(`/Patient/${gone.id}`)).status).toBe(410);
    expect(await json(await call(`/Patient/${keep.id}`))).toMatchObject({ gender: "other" });
  });

  it("conditional create (ifNoneExist): an existing match is the answer and placeholders name it", async () => {
    const value = `txn-${crypto.randomUUID()}`;
    const existing = await createPatient(patient("Txncond", "Ann", { identifier: [{ system: SSN, value }] }));
    const p = urn();
    const res = await postBundle(
      txn("transaction", [
        { fullUrl: p, resource: patient("Txncond", "Ann", { identifier: [{ system: SSN, value }] }), request: { method: "POST", url: "Patient", ifNoneExist: `identifier=${SSN}|${value}` } },
        { resource: observation(p), request: { method: "POST", url: "Observation" } },
      ]),
    );
    expect(res.status).toBe(200);
    const entries = (await json<BundleOut>(res)).entry ?? [];
    expect(entries[0]?.response.status).toBe("200 OK");
    expect(entries[0]?.resource?.id).toBe(existing.id);
    expect(entries[1]?.resource?.subject).toEqual({ reference: `Patient/${existing.id}` });
  });

  it("conditional create after a DELETE of its match in the same transaction: the deleted Patient no longer matches, a new one is created", async () => {
    const value = `txn-del-${crypto.randomUUID()}`;
    const ifNoneExist = `identifier=${SSN}|${value}`;
    // Alone: the POST is a create, not a 200 with the content of the Patient the same commit deletes.
    const first = await createPatient(patient("Txndelcond", "First", { identifier: [{ system: SSN, value }] }));
    const bare = await postBundle(
      txn("transaction", [
        { request: { method: "DELETE", url: `Patient/${first.id}` } },
        { resource: patient("Txndelcond", "Old", { identifier: [{ system: SSN, value }] }), request: { method: "POST", url: "Patient", ifNoneExist } },
      ]),
    );
    const bareOut = await json<BundleOut>(bare);
    expect(bare.status, JSON.stringify(bareOut).slice(0, 300)).toBe(200);
    expect(bareOut.entry?.map((e) => e.response.status)).toEqual(["204 No Content", "201 Created"]);
    expect(bareOut.entry?.[1]?.resource?.id).not.toBe(first.id);
    expect(bareOut.entry?.[1]?.resource?.name).toEqual([{ use: "official", family: "Txndelcond", given: ["Old"] }]);
    // With a placeholder naming it: references name the new Patient.
    const doomed = { id: String(bareOut.entry?.[1]?.resource?.id) };
    const p = urn();
    const res = await postBundle(
      txn("transaction", [
        { fullUrl: p, resource: patient("Txndelcond", "New", { identifier: [{ system: SSN, value }] }), request: { method: "POST", url: "Patient", ifNoneExist } },
        { resource: observation(p), request: { method: "POST", url: "Observation" } },
        { request: { method: "DELETE", url: `Patient/${doomed.id}` } },
      ]),
    );
    const out = await json<BundleOut>(res);
    expect(res.status, JSON.stringify(out).slice(0, 300)).toBe(200);
    expect(out.entry?.map((e) => e.response.status)).toEqual(["201 Created", "201 Created", "204 No Content"]);
    const created = String(out.entry?.[0]?.resource?.id);
    expect(created).not.toBe(doomed.id);
    expect(out.entry?.[0]?.resource?.name).toEqual([{ use: "official", family: "Txndelcond", given: ["New"] }]);
    expect(out.entry?.[1]?.resource?.subject).toEqual({ reference: `Patient/${created}` });
    // Committed as answered: the old Patient is gone, the new one is the identifier's only match.
    expect((await call(`/Patient/${doomed.id}`)).status).toBe(410);
    const found = await json<{ total?: number; entry?: { resource: { id: string } }[] }>(await call(`/Patient?${ifNoneExist}`));
    expect(found.total).toBe(1);
    expect(found.entry?.[0]?.resource.id).toBe(created);
    // With another live match left besides the deleted one, that match is the answer (nothing created).
    const other = await createPatient(patient("Txndelcond", "Other", { identifier: [{ system: SSN, value }] }));
    const again = await postBundle(txn("transaction", [{ resource: patient("Txndelcond", "Newer", { identifier: [{ system: SSN, value }] }), request: { method: "POST", url: "Patient", ifNoneExist } }, { request: { method: "DELETE", url: `Patient/${created}` } }]));
    const twice = await json<BundleOut>(again);
    expect(again.status).toBe(200);
    expect(twice.entry?.map((e) => [e.response.status, e.resource?.id])).toEqual([["200 OK", other.id], ["204 No Content", undefined]]);
  });

  it("concurrent transactions with the same conditional create make one Patient; a loser is a 409 that changed nothing", async () => {
    const value = `txn-race-${crypto.randomUUID()}`;
    const instances = [SELF, env.ISO_1, env.ISO_2, env.ISO_3];
    const bundle = () => {
      const p = urn();
      return txn("transaction", [
        { fullUrl: p, resource: patient("Txnrace", "Ann", { identifier: [{ system: SSN, value }] }), request: { method: "POST", url: "Patient", ifNoneExist: `identifier=${SSN}|${value}` } },
        { resource: observation(p), request: { method: "POST", url: "Observation" } },
      ]);
    };
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => call("", { method: "POST", body: bundle(), via: instances[i % instances.length] })));
    const statuses = answers.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    const ok = await Promise.all(answers.filter((r) => r.status === 200).map((r) => json<BundleOut>(r)));
    const patients = new Set(ok.map((b) => b.entry?.[0]?.resource?.id));
    // Every transaction that committed names the one Patient, created by exactly one of them.
    expect(patients.size).toBe(1);
    expect(ok.filter((b) => b.entry?.[0]?.response.status === "201 Created")).toHaveLength(1);
    const found = await json<{ entry?: unknown[] }>(await call(`/Patient?identifier=${encodeURIComponent(`${SSN}|${value}`)}`));
    expect(found.entry).toHaveLength(1);
    // Each committed transaction wrote its one Observation; a 409 wrote none.
    const [id] = [...patients];
    const observations = await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions WHERE resource_type = 'Observation' AND patient_id = ?").bind(id ?? "").first<{ n: number }>();
    expect(observations?.n).toBe(ok.length);
    for (const r of answers.filter((x) => x.status === 409)) expect(await outcomeCode(r)).toBe("conditional_create_conflict");
  });

  it("Prefer: return=minimal leaves resources out, return=OperationOutcome puts an outcome in each response", async () => {
    const minimal = await postBundle(txn("transaction", [{ resource: patient("Txnpref"), request: { method: "POST", url: "Patient" } }]), { headers: { prefer: "return=minimal" } });
    const m = (await json<BundleOut>(minimal)).entry?.[0];
    expect(m?.resource).toBeUndefined();
    expect(m?.response.location).toMatch(/\/Patient\/[0-9a-f-]{36}\/_history\/1$/);
    const oo = await postBundle(txn("transaction", [{ resource: patient("Txnpref"), request: { method: "POST", url: "Patient" } }]), { headers: { prefer: "return=OperationOutcome" } });
    const o = await json<BundleOut>(oo);
    await expectValidFhir(o);
    expect(o.entry?.[0]?.response.outcome?.issue[0]?.code).toBe("informational");
  });
});

describe("a transaction with a failing entry changes nothing", () => {
  async function expectRefused(body: unknown, status: number, code: string, scopes?: string[]): Promise<void> {
    const before = await tableCounts();
    const seqBefore = (await auditRows()).at(-1)?.seq ?? 0;
    const res = await postBundle(body, scopes ? { scopes } : {});
    expect(res.status, code).toBe(status);
    expect(await outcomeCode(res)).toBe(code);
    const after = await tableCounts();
    // No data and no entry record: only the refused request itself is recorded (one row, action bundle).
    expect(after.resource_versions).toBe(before.resource_versions);
    expect(after.search_index).toBe(before.search_index);
    const added = (await auditRows()).filter((r) => r.seq > seqBefore);
    expect(added.map((r) => [r.action, r.resource_type, r.outcome, r.reason])).toEqual([["bundle", "Bundle", status === 403 ? "denied" : "failed", code]]);
  }

  it("a version conflict (If-Match), a missing resource, a deleted one: 412, 404, 410", async () => {
    const { id, resource } = await createPatient(patient("Txnrollback"));
    const create = { fullUrl: urn(), resource: patient("Txnneverstored"), request: { method: "POST", url: "Patient" } };
    await expectRefused(txn("transaction", [create, { resource, request: { method: "PUT", url: `Patient/${id}`, ifMatch: 'W/"7"' } }]), 412, "version_mismatch");
    await expectRefused(txn("transaction", [create, { request: { method: "DELETE", url: `Patient/${crypto.randomUUID()}` } }]), 404, "not_found");
    expect((await call(`/Patient/${id}`, { method: "DELETE" })).status).toBe(204);
    await expectRefused(txn("transaction", [create, { request: { method: "GET", url: `Patient/${id}` } }]), 410, "gone");
    const search = await json<{ total?: number }>(await call("/Patient?family=Txnneverstored"));
    expect(search.total).toBe(0);
  });

  it("an unresolved reference, a duplicate fullUrl, an unknown subject, two changes of one resource, an invalid resource", async () => {
    const { id, resource } = await createPatient(patient("Txnbad"));
    const p = urn();
    const create = { fullUrl: p, resource: patient("Txnneverstored"), request: { method: "POST", url: "Patient" } };
    await expectRefused(txn("transaction", [create, { resource: observation(urn()), request: { method: "POST", url: "Observation" } }]), 422, "unresolved_reference");
    await expectRefused(txn("transaction", [create, { ...create }]), 400, "duplicate_fullurl");
    await expectRefused(txn("transaction", [create, { resource: observation(`Patient/${crypto.randomUUID()}`), request: { method: "POST", url: "Observation" } }]), 422, "unknown_subject");
    // The subject deleted by the same transaction (DELETE runs first) is no longer live.
    await expectRefused(
      txn("transaction", [{ resource: observation(`Patient/${id}`), request: { method: "POST", url: "Observation" } }, { request: { method: "DELETE", url: `Patient/${id}` } }]),
      422,
      "unknown_subject",
    );
    await expectRefused(txn("transaction", [{ resource, request: { method: "PUT", url: `Patient/${id}` } }, { request: { method: "DELETE", url: `Patient/${id}` } }]), 400, "duplicate_target");
    const res = await postBundle(txn("transaction", [create, { resource: { ...patient("Txnbad"), birthDate: "yesterday" }, request: { method: "POST", url: "Patient" } }]));
    expect(res.status).toBe(400);
    const outcome = await json<{ issue: { expression?: string[] }[] }>(res);
    await expectValidFhir(outcome);
    expect(outcome.issue.flatMap((i) => i.expression ?? [])).toContain("Bundle.entry[1].resource.birthDate");
    expect(JSON.stringify(outcome)).not.toContain("yesterday");
    // Observation has no update or delete here; HEAD and PATCH are not offered in Bundles.
    await expectRefused(txn("transaction", [create, { request: { method: "DELETE", url: `Observation/${crypto.randomUUID()}` } }]), 405, "method_not_allowed");
    await expectRefused(txn("transaction", [create, { request: { method: "PATCH", url: `Patient/${id}` } }]), 405, "method_not_allowed");
  });

  it("a resource nested 100,000 levels deep (JSON.parse accepts it, ~200 KB): the entry's 400, not a 500", async () => {
    const before = await tableCounts();
    const seqBefore = (await auditRows()).at(-1)?.seq ?? 0;
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const create = JSON.stringify({ resource: patient("Txndeepok"), request: { method: "POST", url: "Patient" } });
    const raw = `{"resourceType":"Bundle","type":"transaction","entry":[${create},{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","x":${deep}}}]}`;
    const res = await call("", { method: "POST", raw });
    expect(res.status).toBe(400);
    const outcome = await json<{ resourceType: string; issue: { expression?: string[]; details?: { coding?: { code: string }[] } }[] }>(res);
    await expectValidFhir(outcome);
    expect(outcome.issue[0]?.details?.coding?.[0]?.code).toBe("invalid_request");
    expect(outcome.issue.flatMap((i) => i.expression ?? [])).toContain("Bundle.entry[1].resource");
    const after = await tableCounts();
    expect(after.resource_versions).toBe(before.resource_versions);
    expect(after.search_index).toBe(before.search_index);
    const added = (await auditRows()).filter((r) => r.seq > seqBefore);
    expect(added.map((r) => [r.action, r.outcome, r.reason])).toEqual([["bundle", "failed", "invalid_request"]]);
  });

  it("two transactions updating the same version at once: one commits, the other is a 409 and writes nothing", async () => {
    const { id, resource } = await createPatient(patient("Txnrace"));
    const update = (gender: string) =>
      postBundle(
        txn("transaction", [
          { resource: patient("Txnracenew"), request: { method: "POST", url: "Patient" } },
          { resource: { ...resource, gender }, request: { method: "PUT", url: `Patient/${id}` } },
        ]),
      );
    const answers = await Promise.all([update("male"), update("other"), update("unknown")]);
    const statuses = answers.map((r) => r.status);
    // Each commits whole (it read the version after the one before it) or loses the race whole.
    expect(statuses.every((s) => s === 200 || s === 409)).toBe(true);
    const winners = statuses.filter((s) => s === 200).length;
    expect(winners).toBeGreaterThan(0);
    for (const r of answers) if (r.status !== 200) expect(await outcomeCode(r)).toBe("version_conflict");
    // Versions never fork; a losing transaction left neither its update nor its create.
    const versions = await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions WHERE id = ?").bind(id).first<{ n: number }>();
    expect(versions?.n).toBe(1 + winners);
    expect((await json<{ total?: number }>(await call("/Patient?family=Txnracenew"))).total).toBe(winners);
  });

  it("a token without phi:write cannot write through a transaction: 403, nothing changes", async () => {
    const create = { resource: patient("Txnreadonly"), request: { method: "POST", url: "Patient" } };
    await expectRefused(txn("transaction", [create]), 403, "insufficient_scope", ["phi:read"]);
    // Reads alone pass with phi:read.
    const { id } = await createPatient(patient("Txnreadonly"));
    const read = await postBundle(txn("transaction", [{ request: { method: "GET", url: `Patient/${id}` } }]), { scopes: ["phi:read"] });
    expect(read.status).toBe(200);
    await expectRefused(txn("transaction", [{ request: { method: "GET", url: `Patient/${id}` } }]), 403, "insufficient_scope", ["phi:write"]);
  });
});

describe("SMART-scoped tokens and absolute request.url", () => {
  it("an entry absolute on the base is judged on its resource type, as the same entry relative to it", async () => {
    const { id } = await createPatient(patient("Txnsmartabs"));
    const smart = { scopes: ["system/Patient.cruds"] };
    const p = urn();
    const res = await postBundle(
      txn("transaction", [
        { fullUrl: p, resource: patient("Txnsmartnew"), request: { method: "POST", url: `${BASE}/Patient` } },
        { request: { method: "GET", url: `${BASE}/Patient/${id}` } },
      ]),
      smart,
    );
    const out = await json<BundleOut>(res);
    expect(res.status, JSON.stringify(out).slice(0, 300)).toBe(200);
    expect(out.entry?.map((e) => e.response.status)).toEqual(["201 Created", "200 OK"]);
    expect(out.entry?.[1]?.resource?.id).toBe(id);
    const batch = await postBundle(txn("batch", [{ request: { method: "GET", url: `${BASE}/Patient/${id}` } }]), smart);
    expect(batch.status).toBe(200);
    expect((await json<BundleOut>(batch)).entry?.[0]?.response.status).toBe("200 OK");
    // The scope still decides, absolute or not: no Observation scope, no create on Patient with .rs; nothing written.
    const before = await tableCounts();
    for (const [scopes, entry] of [
      [["system/Patient.cruds"], { request: { method: "GET", url: `${BASE}/Observation/${crypto.randomUUID()}` } }],
      [["system/Patient.rs"], { resource: patient("Txnsmartno"), request: { method: "POST", url: `${BASE}/Patient` } }],
    ] as const) {
      const refused = await postBundle(txn("transaction", [entry]), { scopes: [...scopes] });
      expect(refused.status).toBe(403);
      expect(await outcomeCode(refused)).toBe("insufficient_scope");
    }
    const after = await tableCounts();
    expect(after.resource_versions).toBe(before.resource_versions);
  });
});

describe("malformed Bundles and limits", () => {
  it("anything but a transaction or batch Bundle is a 400 OperationOutcome; more than 100 entries a 413", async () => {
    const bad: unknown[] = [
      { resourceType: "Patient" },
      { resourceType: "Bundle", type: "collection", entry: [] },
      { resourceType: "Bundle", type: "transaction", entry: [{ resource: patient("X") }] },
      { resourceType: "Bundle", type: "transaction", entry: [{ request: { method: "GET", url: "Patient/x" }, response: { status: "200" } }] },
      { resourceType: "Bundle", type: "transaction", entry: {} },
      { resourceType: "Bundle", type: "transaction", unknown: 1 },
    ];
    for (const body of bad) {
      const res = await postBundle(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      await expectValidFhir(await json(res));
    }
    const raw = await call("", { method: "POST", raw: "{not json" });
    expect(raw.status).toBe(400);
    expect(await json(raw)).toMatchObject({ resourceType: "OperationOutcome" });
    const many = txn("transaction", Array.from({ length: 101 }, () => ({ resource: patient("Txnmany"), request: { method: "POST", url: "Patient" } })));
    const before = await tableCounts();
    const res = await postBundle(many);
    expect(res.status).toBe(413);
    expect(await outcomeCode(res)).toBe("too_many_entries");
    expect((await tableCounts()).resource_versions).toBe(before.resource_versions);
  });

  it("100 entries commit in one batch (within D1's per-statement limits)", async () => {
    const p = urn();
    const entries = [
      { fullUrl: p, resource: patient("Txnhundred"), request: { method: "POST", url: "Patient" } },
      ...Array.from({ length: 99 }, (_, i) => ({ resource: observation(p, `obs ${i}`), request: { method: "POST", url: "Observation" } })),
    ];
    const { res, roundTrips } = await postCounted(txn("transaction", entries));
    expect(res.status).toBe(200);
    expect(roundTrips).toBe(1);
    const out = (await json<BundleOut>(res)).entry ?? [];
    expect(out).toHaveLength(100);
    const patientId = String(out[0]?.resource?.id);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE action = 'create' AND resource_type = 'Observation' AND patient_ids = ?")
      .bind(patientId)
      .first<{ n: number }>();
    expect(n?.n).toBe(99);
  });

  it("an empty transaction answers an empty transaction-response", async () => {
    const res = await postBundle(txn("transaction", []));
    expect(res.status).toBe(200);
    const out = await json<BundleOut>(res);
    expect(out).toMatchObject({ resourceType: "Bundle", type: "transaction-response" });
    expect(out.entry).toBeUndefined();
  });
});
