import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { tenantSettings } from "../src/config";
import { readChunk, type ChunkProgress, type ChunkRead } from "../src/export/chunk";
import { auditRows, call, expectValidFhir, json, patient } from "./helpers";
import { byId, downloadAll, jobIdOf, kickOff, seedPatient, waitForManifest, type Manifest } from "./export-helpers";

/**
 * Bulk Data export end to end in workerd: real D1, the real job Durable Object and its
 * alarms, real R2. EXPORT_CHUNK_SIZE is 3 here (vitest.config.ts), so 8 patients take
 * several alarm runs. Storage is this file's own: the patients seeded below are all there is.
 */
const PATIENTS = 8;
const OBS_PER_PATIENT = 2;
let seeded: { id: string; observations: string[] }[] = [];

/** What a client reading each resource one by one gets: the export must hold exactly that. */
async function readAll(type: string, ids: string[]): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const id of ids) {
    const res = await call(`/${type}/${id}`);
    expect(res.status).toBe(200);
    out.push(await json(res));
  }
  return out.sort(byId);
}

beforeAll(async () => {
  seeded = [];
  for (let i = 0; i < PATIENTS; i++) seeded.push(await seedPatient(`Export${i}`, OBS_PER_PATIENT));
});

describe("$export: kick-off, poll, manifest, download", () => {
  let statusUrl = "";
  let manifest: Manifest;

  it("runs across several alarms and answers the manifest of complete, duplicate-free files", async () => {
    statusUrl = await kickOff("?_outputFormat=application%2Ffhir%2Bndjson");
    const first = await call(statusUrl);
    // The first poll comes before the job can have finished three chunks: in progress.
    expect(first.status).toBe(202);
    expect(first.headers.get("x-progress")).toMatch(/^(starting|\d+% \(\d+ of \d+ patients, \d+ chunks\))$/);
    const done = await waitForManifest(statusUrl);
    manifest = done.manifest;
    expect(manifest).toMatchObject({ requiresAccessToken: true, error: [] });
    expect(manifest.request).toBe("https://phi.internal/v1/phi/$export?_outputFormat=application%2Ffhir%2Bndjson");
    expect(Date.parse(manifest.transactionTime)).toBeLessThanOrEqual(Date.now());
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([
      ["Patient", PATIENTS],
      ["Observation", PATIENTS * OBS_PER_PATIENT],
    ]);
    for (const o of manifest.output) expect(o.url).toMatch(new RegExp(`^https://phi\\.internal/v1/phi/\\$export-file/${jobIdOf(statusUrl)}/${o.type}-1\\.ndjson$`));
  });

  it("files hold, line by line, exactly the resources as read one by one", async () => {
    const files = await downloadAll(manifest);
    const patients = [...(files.get("Patient") ?? [])];
    const observations = [...(files.get("Observation") ?? [])];
    expect(new Set(patients.map((p) => p.id)).size).toBe(patients.length);
    expect(new Set(observations.map((o) => o.id)).size).toBe(observations.length);
    expect(patients.sort(byId)).toEqual(await readAll("Patient", seeded.map((s) => s.id)));
    expect(observations.sort(byId)).toEqual(await readAll("Observation", seeded.flatMap((s) => s.observations)));
    await expectValidFhir(patients[0]);
    await expectValidFhir(observations[0]);
  });

  it("audits the request, every run's patients (each patient in the runs that exported its resources) and each download", async () => {
    const job = jobIdOf(statusUrl);
    const rows = (await auditRows()).filter((r) => r.resource_id === job);
    const kick = rows.filter((r) => r.action === "export");
    expect(kick.map((r) => [r.resource_type, r.outcome, r.actor_sub])).toEqual([["System", "success", "clinician-1"]]);
    const chunks = rows.filter((r) => r.action === "export-disclose");
    // ceil(8 / 3) chunks with patients, then the run that found none left. EXPORT_CHUNK_ROWS is 4: the first two
    // chunks (3 Patients, 6 Observations) take two runs each, the first with all three Patients and the first two
    // patients' Observations, the second with the third patient's; the last chunk (2 and 4) takes one.
    expect(chunks).toHaveLength(6);
    for (const c of chunks) expect(c).toMatchObject({ outcome: "success", actor_sub: "clinician-1", resource_type: "Patient,Observation", request_id: kick[0]?.request_id });
    const disclosed = chunks.flatMap((c) => (c.patient_ids === "" ? [] : c.patient_ids.split(",")));
    expect([...new Set(disclosed)].sort()).toEqual(seeded.map((s) => s.id).sort());
    expect(chunks.map((c) => (c.patient_ids === "" ? 0 : c.patient_ids.split(",").length))).toEqual([3, 1, 3, 1, 2, 0]);
    // The second run of a chunk names the one patient whose Observations it exported, named by the first run too.
    expect(chunks[1]?.patient_ids).toBe(seeded.map((s) => s.id).sort()[2]);
    expect(rows.filter((r) => r.action === "export-download").map((r) => [r.resource_type, r.outcome])).toEqual([
      ["Patient", "success"],
      ["Observation", "success"],
    ]);
  });
});

describe("discovery", () => {
  it("the CapabilityStatement states the Bulk Data operations, and is still valid FHIR", async () => {
    const cs = await json<{ instantiates: string[]; rest: { operation: unknown[]; resource: { type: string; operation?: unknown[] }[] }[] }>(await call("/metadata"));
    expect(cs.instantiates).toEqual(["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"]);
    expect(cs.rest[0]?.operation).toEqual([{ name: "export", definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export" }]);
    expect(cs.rest[0]?.resource.find((r) => r.type === "Patient")?.operation).toEqual([
      { name: "export", definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export" },
    ]);
    await expectValidFhir(cs);
  });
});

describe("$export parameters", () => {
  it("_type chooses the files; the Patient level exports the same compartment", async () => {
    const { manifest } = await waitForManifest(await kickOff("?_type=Observation&_outputFormat=ndjson"));
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([["Observation", PATIENTS * OBS_PER_PATIENT]]);
    const patientLevel = await waitForManifest(await kickOff("?_type=Patient", { level: "/Patient" }));
    expect(patientLevel.manifest.output.map((o) => [o.type, o.count])).toEqual([["Patient", PATIENTS]]);
    const rows = (await auditRows()).filter((r) => r.action === "export" && r.resource_type === "Patient");
    expect(rows).toHaveLength(1);
  });

  it("_since exports only what changed after it, in its current version", async () => {
    await new Promise((r) => setTimeout(r, 5));
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const fresh = await seedPatient("ExportFresh", 1);
    const changed = seeded[0];
    if (!changed) throw new Error("no seeded patient");
    const put = await call(`/Patient/${changed.id}`, { method: "PUT", body: { ...patient("ExportChanged"), id: changed.id } });
    expect(put.status).toBe(200);

    const { manifest } = await waitForManifest(await kickOff(`?_since=${encodeURIComponent(since)}&_outputFormat=application%2Fndjson`));
    const files = await downloadAll(manifest);
    expect((files.get("Patient") ?? []).map((p) => p.id).sort()).toEqual([fresh.id, changed.id].sort());
    expect((files.get("Patient") ?? []).find((p) => p.id === changed.id)).toMatchObject({ meta: { versionId: "2" }, name: [{ family: "ExportChanged" }] });
    expect((files.get("Observation") ?? []).map((o) => o.id)).toEqual(fresh.observations);
    // The _since export's chunk records name only the patients it disclosed.
    const job = jobIdOf(manifest.output[0]?.url.replace(/\/[^/]+$/, "") ?? "");
    const disclosed = (await auditRows()).filter((r) => r.action === "export-disclose" && r.resource_id === job).flatMap((r) => (r.patient_ids ? r.patient_ids.split(",") : []));
    expect(disclosed.sort()).toEqual([fresh.id, changed.id].sort());
  });

  it("a deleted patient is not exported", async () => {
    const gone = await seedPatient("ExportGone", 0);
    expect((await call(`/Patient/${gone.id}`, { method: "DELETE" })).status).toBe(204);
    const { manifest } = await waitForManifest(await kickOff("?_type=Patient"));
    const ids = ((await downloadAll(manifest)).get("Patient") ?? []).map((p) => p.id);
    expect(ids).not.toContain(gone.id);
    expect(ids).toHaveLength(PATIENTS + 1);
  });
});

describe("the snapshot", () => {
  it("a chunk reads the versions current at the transaction time: later creates and updates are not in it", async () => {
    const transactionTime = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    const later = await seedPatient("ExportLater", 1);
    const updated = seeded[1];
    if (!updated) throw new Error("no seeded patient");
    expect((await call(`/Patient/${updated.id}`, { method: "PUT", body: { ...patient("ExportUpdatedLater"), id: updated.id } })).status).toBe(200);
    const actor = { tenantId: "ten_default", sub: "snapshot-test", clientId: "snapshot-test", roles: [], tokenId: "t", clientIp: "127.0.0.1", purposeOfUse: "TREAT", requestId: "r", traceId: "" };
    const { bodies } = await tenantSettings(env, env.DB, 0, "ten_default");
    const spec = { jobId: crypto.randomUUID(), types: ["Patient", "Observation"] as const, since: null, transactionTime, after: "", size: 1000, rows: 1000 };
    const read = await readChunk(env.DB, bodies, actor, { ...spec, types: [...spec.types] }, new Date());
    const patients = (read.lines.get("Patient") ?? []).map((l) => JSON.parse(l) as { id: string; meta: { versionId: string }; name: { family: string }[] });
    expect(patients.map((p) => p.id)).not.toContain(later.id);
    expect((read.lines.get("Observation") ?? []).map((l) => (JSON.parse(l) as { id: string }).id)).not.toContain(later.observations[0]);
    expect(patients.find((p) => p.id === updated.id)).toMatchObject({ meta: { versionId: "1" }, name: [{ family: "Export1" }] });
    expect(read.upper).not.toBeNull();
    expect(read.patients).not.toContain(later.id);
    // Its disclosure record names exactly the patients read.
    const record = (await auditRows()).find((r) => r.resource_id === spec.jobId);
    expect(record?.patient_ids.split(",").sort()).toEqual([...read.patients].sort());
  });
});

describe("a chunk whose patients hold more than one run's resources", () => {
  it("is read in parts that resume inside one patient's history: together exactly the lines of one unbounded read, each part at most `rows` per type and recorded with its own patients", async () => {
    const long = await seedPatient("ExportLongHistory", 11);
    const transactionTime = new Date().toISOString();
    const actor = { tenantId: "ten_default", sub: "parts-test", clientId: "parts-test", roles: [], tokenId: "t", clientIp: "127.0.0.1", purposeOfUse: "TREAT", requestId: "r", traceId: "" };
    const { bodies } = await tenantSettings(env, env.DB, 0, "ten_default");
    const base = { jobId: crypto.randomUUID(), types: ["Patient", "Observation"] as ("Patient" | "Observation")[], since: null, transactionTime, after: "", size: 1000 };
    const whole = await readChunk(env.DB, bodies, actor, { ...base, rows: 100_000 }, new Date());
    expect(whole.progress).toBeNull();
    const wholePatients = whole.lines.get("Patient") ?? [];
    const wholeObservations = whole.lines.get("Observation") ?? [];
    expect(wholeObservations.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(expect.arrayContaining(long.observations));

    const rows = 4;
    const parts: ChunkRead[] = [];
    let progress: ChunkProgress | undefined;
    for (let i = 0; i < 100; i++) {
      const read = await readChunk(env.DB, bodies, actor, { ...base, jobId: `${base.jobId}-${i}`, rows, ...(progress ? { progress } : {}) }, new Date());
      parts.push(read);
      if (!read.progress) break;
      progress = read.progress;
    }
    // Each type advances `rows` at a time and is done at its end: as many parts as the longer type needs.
    expect(parts).toHaveLength(Math.max(Math.ceil(wholePatients.length / rows), Math.ceil(wholeObservations.length / rows)));
    expect(parts.at(-1)?.progress).toBeNull();
    for (const part of parts) {
      expect(part.upper).toBe(whole.upper);
      expect((part.lines.get("Patient") ?? []).length).toBeLessThanOrEqual(rows);
      expect((part.lines.get("Observation") ?? []).length).toBeLessThanOrEqual(rows);
    }
    // Put back together, the parts are the unbounded read, line for line and in its order: nothing twice, nothing left out.
    expect(parts.flatMap((p) => p.lines.get("Patient") ?? [])).toEqual(wholePatients);
    expect(parts.flatMap((p) => p.lines.get("Observation") ?? [])).toEqual(wholeObservations);
    // The long history spans several parts (the resume is inside that one patient).
    const holding = parts.filter((p) => (p.lines.get("Observation") ?? []).some((l) => (JSON.parse(l) as { subject: { reference: string } }).subject.reference === `Patient/${long.id}`));
    expect(holding.length).toBeGreaterThanOrEqual(3);
    // Each part's disclosure record names exactly the patients whose resources that part exported.
    const records = await auditRows();
    parts.forEach((part, i) => {
      const record = records.find((r) => r.resource_id === `${base.jobId}-${i}`);
      // Once each, even when the part read one patient's Observations alone.
      expect(record?.patient_ids.split(",").filter(Boolean)).toEqual([...part.patients].sort());
    });
  });
});
