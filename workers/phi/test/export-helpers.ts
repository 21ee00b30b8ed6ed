import { env } from "cloudflare:test";
import { expect } from "vitest";
import { call, createPatient, json, patient, type Caller } from "./helpers";

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: string; url: string; count: number }[];
  error: unknown[];
}

export const ASYNC = { prefer: "respond-async" };

/** Kick-off (`level` "" for the system level, "/Patient" for the Patient level); returns the status URL. */
export async function kickOff(query = "", opts: { as?: Caller; level?: string } = {}): Promise<string> {
  const res = await call(`${opts.level ?? ""}/$export${query}`, { headers: ASYNC, ...(opts.as ? { as: opts.as } : {}) });
  expect(res.status, await res.clone().text()).toBe(202);
  const location = res.headers.get("content-location") ?? "";
  expect(location).toMatch(/^https:\/\/phi\.internal\/v1\/phi\/\$export-status\/[0-9a-f-]{36}$/);
  return location;
}

export function jobIdOf(statusUrl: string): string {
  return statusUrl.slice(statusUrl.lastIndexOf("/") + 1);
}

/** Polls the status URL as the spec's client does until the manifest (the alarms run for real meanwhile). */
export async function waitForManifest(statusUrl: string, as?: Caller): Promise<{ manifest: Manifest; polls: number; progress: string[] }> {
  const progress: string[] = [];
  for (let polls = 1; polls <= 2000; polls++) {
    const res = await call(statusUrl, as ? { as } : {});
    if (res.status === 200) {
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      return { manifest: await json<Manifest>(res), polls, progress };
    }
    expect(res.status, await res.clone().text()).toBe(202);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    progress.push(res.headers.get("x-progress") ?? "");
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("export did not complete");
}

/** A file's lines, each parsed (the file ends with a newline, and no line is empty). */
export async function download(url: string, as?: Caller): Promise<Record<string, unknown>[]> {
  const res = await call(url, as ? { as } : {});
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/fhir+ndjson");
  // Decoded explicitly: NDJSON is UTF-8 (the runtime does not assume so for this media type).
  const text = new TextDecoder().decode(await res.arrayBuffer());
  if (text === "") return [];
  expect(text.endsWith("\n")).toBe(true);
  return text
    .slice(0, -1)
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Every resource of the manifest, by type, files concatenated in manifest order. */
export async function downloadAll(m: Manifest, as?: Caller): Promise<Map<string, Record<string, unknown>[]>> {
  const out = new Map<string, Record<string, unknown>[]>();
  for (const f of m.output) {
    const lines = await download(f.url, as);
    expect(lines).toHaveLength(f.count);
    out.set(f.type, [...(out.get(f.type) ?? []), ...lines]);
  }
  return out;
}

/** A patient with `observations` Observations; returns the ids. */
export async function seedPatient(family: string, observations: number): Promise<{ id: string; observations: string[] }> {
  const { id, res } = await createPatient(patient(family));
  expect(res.status).toBe(201);
  const obs: string[] = [];
  for (let i = 0; i < observations; i++) {
    const r = await call("/Observation", {
      method: "POST",
      body: {
        resourceType: "Observation",
        status: "final",
        code: { coding: [{ system: "http://loinc.org", code: "8867-4", display: "Heart rate" }] },
        subject: { reference: `Patient/${id}` },
        effectiveDateTime: `2026-01-0${(i % 9) + 1}T10:00:00Z`,
        valueQuantity: { value: 60 + i, unit: "beats/minute", system: "http://unitsofmeasure.org", code: "/min" },
      },
    });
    expect(r.status).toBe(201);
    obs.push(String((await json(r)).id));
  }
  return { id, observations: obs };
}

/** The R2 objects of a job (its files' parts). */
export async function objectsOf(jobId: string): Promise<string[]> {
  const page = await env.EXPORTS.list({ prefix: `exports/${jobId}/` });
  return page.objects.map((o) => o.key);
}

/** Waits (bounded) until a job has no objects left: deletion may finish in a run that raced the cancel. */
export async function waitNoObjects(jobId: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if ((await objectsOf(jobId)).length === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(await objectsOf(jobId)).toEqual([]);
}

export function byId(a: Record<string, unknown>, b: Record<string, unknown>): number {
  return String(a.id).localeCompare(String(b.id));
}
