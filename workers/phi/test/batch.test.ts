import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, call, createPatient, expectValidFhir, json, patient } from "./helpers";
import { observation, outcomeCode, postBundle, tableCounts, txn, urn, type BundleOut } from "./bundle-helpers";

describe("batch Bundles (POST /v1/phi)", () => {
  it("answers each entry on its own, with one audit record per entry (success or not)", async () => {
    const live = await createPatient(patient("Batchlive"));
    const gone = await createPatient(patient("Batchgone"));
    const doomed = await createPatient(patient("Batchdoomed"));
    expect((await call(`/Patient/${gone.id}`, { method: "DELETE" })).status).toBe(204);
    const missing = crypto.randomUUID();
    const seqBefore = (await auditRows()).at(-1)?.seq ?? 0;
    const res = await postBundle(
      txn("batch", [
        { resource: patient("Batchnew"), request: { method: "POST", url: "Patient" } },
        { resource: { ...live.resource, id: missing }, request: { method: "PUT", url: `Patient/${missing}` } },
        { request: { method: "GET", url: `Patient/${live.id}` } },
        { request: { method: "GET", url: `Patient/${gone.id}` } },
        { resource: { ...live.resource, gender: "other" }, request: { method: "PUT", url: `Patient/${live.id}`, ifMatch: 'W/"9"' } },
        { resource: observation(urn()), request: { method: "POST", url: "Observation" } },
        { resource: observation(`Patient/${live.id}`), request: { method: "POST", url: "Observation" } },
        { request: { method: "DELETE", url: `Patient/${doomed.id}` } },
        { resource: { ...patient("Batchbad"), gender: "sometimes" }, request: { method: "POST", url: "Patient" } },
        { request: { method: "PATCH", url: `Patient/${live.id}` } },
      ]),
    );
    expect(res.status).toBe(200);
    const rows = (await auditRows()).filter((r) => r.seq > seqBefore);
    const out = await json<BundleOut>(res);
    await expectValidFhir(out);
    expect(out.type).toBe("batch-response");
    const entries = out.entry ?? [];
    expect(entries.map((e) => e.response.status)).toEqual([
      "201 Created",
      "404 Not Found",
      "200 OK",
      "410 Gone",
      "412 Precondition Failed",
      "422 Unprocessable Content",
      "201 Created",
      "204 No Content",
      "400 Bad Request",
      "405 Method Not Allowed",
    ]);
    const codes = entries.map((e) => e.response.outcome?.issue[0]?.details?.coding?.[0]?.code);
    expect(codes).toEqual([undefined, "not_found", undefined, "gone", "version_mismatch", "unresolved_reference", undefined, undefined, "invalid_request", "method_not_allowed"]);
    expect(entries[2]?.resource).toMatchObject({ resourceType: "Patient", id: live.id });
    // What succeeded is stored; what failed is not.
    const created = String(entries[0]?.resource?.id);
    expect((await call(`/Patient/${created}`)).status).toBe(200);
    expect((await call(`/Patient/${doomed.id}`)).status).toBe(410);
    expect(await json(await call(`/Patient/${live.id}`))).toMatchObject({ meta: { versionId: "1" } });
    expect((await json<{ total?: number }>(await call("/Patient?family=Batchbad"))).total).toBe(0);
    // Ten entries, ten records of this one request, in no particular order; nothing else.
    expect(new Set(rows.map((r) => r.request_id)).size).toBe(1);
    const summary = rows.map((r) => `${r.action} ${r.resource_type} ${r.outcome} ${r.reason}`.trim()).sort();
    expect(summary).toEqual(
      [
        "create Patient success",
        "update Patient failed not_found",
        "read Patient success",
        "read Patient failed gone",
        "update Patient failed version_mismatch",
        "create Observation failed unresolved_reference",
        "create Observation success",
        "delete Patient success",
        "create Patient failed invalid_request",
        "update Patient failed method_not_allowed",
      ].sort(),
    );
    const read = rows.find((r) => r.action === "read" && r.outcome === "success");
    expect(read?.patient_ids).toBe(live.id);
  });

  it("urn:uuid references between batch entries are not resolved (FHIR: no interdependencies)", async () => {
    const p = urn();
    const res = await postBundle(
      txn("batch", [
        { fullUrl: p, resource: patient("Batchdep"), request: { method: "POST", url: "Patient" } },
        { resource: observation(p), request: { method: "POST", url: "Observation" } },
        { fullUrl: p, resource: patient("Batchdep"), request: { method: "POST", url: "Patient" } },
      ]),
    );
    const entries = (await json<BundleOut>(res)).entry ?? [];
    expect(entries.map((e) => e.response.status)).toEqual(["201 Created", "422 Unprocessable Content", "400 Bad Request"]);
  });

  it("when the records of the reads and refusals cannot be written, those entries answer 503 and return nothing; the write that committed keeps its 201 and its record", async () => {
    const kept = await createPatient(patient("Batchsecret", "Sibyl"));
    const seqBefore = (await auditRows()).at(-1)?.seq ?? 0;
    // Read records cannot be written (a fault in the audit table, real D1): the read entry's record batch fails.
    await env.DB.prepare("CREATE TRIGGER audit_reads_offline BEFORE INSERT ON phi_audit WHEN NEW.action = 'read' BEGIN SELECT RAISE(ABORT, 'audit offline'); END").run();
    let res: Response;
    let onlyReads: Response;
    try {
      res = await postBundle(
        txn("batch", [
          { resource: patient("Batchstored"), request: { method: "POST", url: "Patient" } },
          { request: { method: "GET", url: `Patient/${kept.id}` } },
          { resource: { ...patient("Batchinvalid"), gender: "sometimes" }, request: { method: "POST", url: "Patient" } },
        ]),
      );
      onlyReads = await postBundle(txn("batch", [{ request: { method: "GET", url: `Patient/${kept.id}` } }]));
    } finally {
      await env.DB.prepare("DROP TRIGGER audit_reads_offline").run();
    }
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toMatch(/Batchsecret|Sibyl/);
    const out = JSON.parse(text) as BundleOut;
    await expectValidFhir(out);
    const entries = out.entry ?? [];
    expect(entries.map((e) => e.response.status)).toEqual(["201 Created", "503 Service Unavailable", "503 Service Unavailable"]);
    expect(entries.map((e) => e.response.outcome?.issue[0]?.details?.coding?.[0]?.code)).toEqual([undefined, "audit_unavailable", "audit_unavailable"]);
    // The create was stored with its record, and answered as stored: a client has no reason to send it again.
    const created = String(entries[0]?.resource?.id);
    expect((await call(`/Patient/${created}`)).status).toBe(200);
    const rows = (await auditRows()).filter((r) => r.seq > seqBefore && r.action !== "read");
    expect(rows.map((r) => `${r.action} ${r.resource_type} ${r.resource_id} ${r.outcome}`)).toContain(`create Patient ${created} success`);
    // With nothing recorded and nothing written, the whole Bundle is refused (503) and returns no PHI.
    expect(onlyReads.status).toBe(503);
    expect(await onlyReads.text()).not.toMatch(/Batchsecret|Sibyl/);
  });

  it("a resource nested 100,000 levels deep is that entry's 400 (not a 500); the other entries are served", async () => {
    const seqBefore = (await auditRows()).at(-1)?.seq ?? 0;
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const create = JSON.stringify({ resource: patient("Batchdeepok"), request: { method: "POST", url: "Patient" } });
    const raw = `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"POST","url":"Patient"},"resource":{"resourceType":"Patient","x":${deep}}},${create}]}`;
    const res = await call("", { method: "POST", raw });
    expect(res.status).toBe(200);
    const out = await json<BundleOut>(res);
    await expectValidFhir(out);
    expect(out.entry?.map((e) => e.response.status)).toEqual(["400 Bad Request", "201 Created"]);
    expect(out.entry?.[0]?.response.outcome?.issue[0]?.details?.coding?.[0]?.code).toBe("invalid_request");
    const added = (await auditRows()).filter((r) => r.seq > seqBefore);
    expect(added.map((r) => [r.action, r.resource_type, r.outcome, r.reason]).sort()).toEqual([
      ["create", "Patient", "failed", "invalid_request"],
      ["create", "Patient", "success", ""],
    ]);
    expect((await json<{ total?: number }>(await call("/Patient?family=Batchdeepok"))).total).toBe(1);
  });

  it("a token without phi:write cannot write through a batch: 403 for the whole Bundle, nothing changes", async () => {
    const before = await tableCounts();
    const res = await postBundle(txn("batch", [{ resource: patient("Batchro"), request: { method: "POST", url: "Patient" } }]), { scopes: ["phi:read"] });
    expect(res.status).toBe(403);
    expect(await outcomeCode(res)).toBe("insufficient_scope");
    const after = await tableCounts();
    expect(after.resource_versions).toBe(before.resource_versions);
    expect(after.phi_audit).toBe((before.phi_audit ?? 0) + 1);
    expect((await auditRows()).at(-1)).toMatchObject({ action: "bundle", outcome: "denied", reason: "insufficient_scope" });
  });
});
