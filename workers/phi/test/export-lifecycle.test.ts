import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { parametersBody, parseExportParams, wantsAsync } from "../src/export/params";
import type { JobState } from "../src/export/state";
import { auditRows, call, json } from "./helpers";
import { ASYNC, download, jobIdOf, kickOff, objectsOf, seedPatient, waitForManifest, waitNoObjects } from "./export-helpers";

/** Refusals, cancel, ownership and expiry of export jobs (real DO, alarms, R2, D1). */
beforeAll(async () => {
  for (let i = 0; i < 7; i++) await seedPatient(`Lifecycle${i}`, 1);
});

interface Outcome {
  resourceType: string;
  issue: { code: string; details: { coding: { code: string }[] } }[];
}

async function refusal(path: string, init: Parameters<typeof call>[1] = {}): Promise<[number, string]> {
  const res = await call(path, init);
  expect(res.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
  const body = await json<Outcome>(res);
  expect(body.resourceType).toBe("OperationOutcome");
  return [res.status, body.issue[0]?.details.coding[0]?.code ?? ""];
}

describe("kick-off refusals (400 OperationOutcome)", () => {
  it("refuses without Prefer: respond-async, bad parameters, and a missing scope", async () => {
    expect(await refusal("/$export")).toEqual([400, "respond_async_required"]);
    expect(await refusal("/Patient/$export", { headers: { prefer: "return=minimal" } })).toEqual([400, "respond_async_required"]);
    const cases: [string, string][] = [
      ["?_type=Condition", "unsupported_type"],
      ["?_type=Patient,", "unsupported_type"],
      ["?_since=yesterday", "invalid_since"],
      ["?_since=2026-01-01", "invalid_since"],
      ["?_since=2026-01-01T00:00:00Z&_since=2026-01-02T00:00:00Z", "invalid_since"],
      ["?_outputFormat=text/csv", "unsupported_output_format"],
      ["?_typeFilter=Patient%3Factive%3Dtrue", "unsupported_parameter"],
      ["?family=Smith", "unknown_parameter"],
    ];
    for (const [query, code] of cases) expect([query, ...(await refusal(`/$export${query}`, { headers: ASYNC }))]).toEqual([query, 400, code]);
    expect(await refusal("/$export", { headers: ASYNC, as: { scopes: ["phi:write"] } })).toEqual([403, "insufficient_scope"]);
    // A POST kick-off carries a Parameters resource, or nothing.
    expect(await refusal("/$export", { method: "POST", headers: ASYNC, body: { resourceType: "Patient" } })).toEqual([400, "invalid_parameters"]);
    const failed = (await auditRows()).filter((r) => r.action === "export");
    expect(failed.every((r) => r.outcome !== "success")).toBe(true);
    expect(failed.length).toBe(cases.length + 4);
  });

  it("accepts a POST with a Parameters body", async () => {
    const res = await call("/Patient/$export", {
      method: "POST",
      headers: ASYNC,
      body: { resourceType: "Parameters", parameter: [{ name: "_type", valueString: "Patient" }, { name: "_outputFormat", valueString: "ndjson" }] },
    });
    expect(res.status).toBe(202);
    const { manifest } = await waitForManifest(res.headers.get("content-location") ?? "");
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([["Patient", 7]]);
  });
});

describe("parameters, pure", () => {
  it("parses what the spec requires and nothing else", () => {
    expect(parseExportParams([])).toEqual({ ok: true, value: { types: ["Patient", "Observation"], since: null } });
    expect(parseExportParams([["_type", "Observation,Patient"], ["_outputFormat", "application/fhir+ndjson"], ["_format", "json"]])).toEqual({ ok: true, value: { types: ["Patient", "Observation"], since: null } });
    expect(parseExportParams([["_since", "2026-01-01T05:00:00+05:00"]])).toEqual({ ok: true, value: { types: ["Patient", "Observation"], since: "2026-01-01T00:00:00.000Z" } });
    expect(parseExportParams([["_outputFormat", "NDJSON"]]).ok).toBe(true);
    expect(wantsAsync("respond-async")).toBe(true);
    expect(wantsAsync("return=minimal, respond-async")).toBe(true);
    expect(wantsAsync("respond-asynchronously")).toBe(false);
    expect(wantsAsync(undefined)).toBe(false);
    expect(parametersBody({ resourceType: "Parameters", parameter: [{ name: "_since", valueInstant: "2026-01-01T00:00:00Z" }] })).toEqual([["_since", "2026-01-01T00:00:00Z"]]);
    expect(parametersBody({ resourceType: "Parameters", parameter: [{ name: "_type", valueString: "Patient", valueCode: "x" }] })).toBeNull();
    expect(parametersBody({ resourceType: "Parameters", parameter: [{ name: "_type", valueInteger: 1 }] })).toBeNull();
  });
});

describe("DELETE on the status URL cancels", () => {
  it("a running job: 202, then 404, its objects gone and no more chunks read", async () => {
    const status = await kickOff();
    const job = jobIdOf(status);
    const res = await call(status, { method: "DELETE" });
    expect(res.status).toBe(202);
    expect((await call(status)).status).toBe(404);
    await waitNoObjects(job);
    const chunksAfterCancel = (await auditRows()).filter((r) => r.action === "export-disclose" && r.resource_id === job).length;
    await new Promise((r) => setTimeout(r, 300));
    expect((await auditRows()).filter((r) => r.action === "export-disclose" && r.resource_id === job)).toHaveLength(chunksAfterCancel);
    expect(await objectsOf(job)).toEqual([]);
    expect((await call(status, { method: "DELETE" })).status).toBe(404);
    expect((await auditRows()).filter((r) => r.resource_id === job && r.action === "export-cancel").map((r) => r.outcome)).toEqual(["success", "failed"]);
  });

  it("a completed job: its files are deleted and no longer served", async () => {
    const status = await kickOff();
    const { manifest } = await waitForManifest(status);
    expect((await objectsOf(jobIdOf(status))).length).toBeGreaterThan(0);
    expect((await call(status, { method: "DELETE" })).status).toBe(202);
    expect(await objectsOf(jobIdOf(status))).toEqual([]);
    for (const f of manifest.output) expect((await call(f.url)).status).toBe(404);
  });
});

describe("only the client that started a job sees it", () => {
  it("another client gets 404 for the status, the cancel and every file; the owner still gets them", async () => {
    const status = await kickOff();
    const { manifest } = await waitForManifest(status);
    const other = { sub: "other-client" };
    expect(await refusal(status, { as: other })).toEqual([404, "export_job_not_found"]);
    expect((await call(status, { method: "DELETE", as: other })).status).toBe(404);
    for (const f of manifest.output) expect(await refusal(f.url, { as: other })).toEqual([404, "export_file_not_found"]);
    expect(await refusal(`${status.slice(0, -36)}not-a-job`)).toEqual([404, "export_job_not_found"]);
    expect(await refusal(`${manifest.output[0]?.url.replace(/[^/]+$/, "") ?? ""}Patient-9.ndjson`)).toEqual([404, "export_file_not_found"]);
    expect((await call(status)).status).toBe(200);
    expect(await download(manifest.output[0]?.url ?? "")).toHaveLength(7);
    const denied = (await auditRows()).filter((r) => r.resource_id === jobIdOf(status) && r.actor_sub === "other-client");
    expect(denied.map((r) => [r.action, r.outcome, r.reason])).toEqual([
      ["export-status", "failed", "export_job_not_found"],
      ["export-cancel", "failed", "export_job_not_found"],
      ["export-download", "failed", "export_file_not_found"],
      ["export-download", "failed", "export_file_not_found"],
    ]);
  });
});

describe("expiry", () => {
  it("after its expiry a job answers 404 and the engine deletes its files and state", async () => {
    const status = await kickOff();
    const job = jobIdOf(status);
    const { manifest } = await waitForManifest(status);
    const stub = env.EXPORT_JOBS.get(env.EXPORT_JOBS.idFromName(job));
    // The TTL is an hour: move this job's expiry into the past rather than wait for it.
    const expiresAt = await runInDurableObject(stub, async (_, state) => {
      const stored = await state.storage.get<JobState>("job");
      if (!stored) throw new Error("job state missing");
      await state.storage.put("job", { ...stored, expiresAt: new Date(Date.now() - 1000).toISOString() });
      return stored.expiresAt;
    });
    expect(Date.parse(expiresAt ?? "") - Date.now()).toBeGreaterThan(3_500_000);
    expect(await refusal(status)).toEqual([404, "export_job_not_found"]);
    for (const f of manifest.output) expect((await call(f.url)).status).toBe(404);
    await waitNoObjects(job);
    for (let i = 0; i < 100 && (await runInDurableObject(stub, (_, s) => s.storage.get("job"))) !== undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await runInDurableObject(stub, (_, s) => s.storage.get("job"))).toBeUndefined();
  });
});
