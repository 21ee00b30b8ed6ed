import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { gatewayHeaders } from "../../../shared/testing/principal";
import worker from "../src/index";
import { BASE, call, createPatient, FHIR, json, patient, PHI_CHAIN, sealAll } from "./helpers";

/**
 * Faults of the store, all from real D1: a binding to a database that has none
 * of its tables (swapped in for one request), a data table gone while a write
 * commits, and the audit table refusing inserts. Each time: a 503
 * OperationOutcome with no PHI and no internal detail, nothing half-written,
 * the chain intact, and the same requests succeeding once the fault is gone.
 */

const TABLES = ["resource_versions", "search_index", "phi_audit"] as const;

async function counts(db: D1Database = env.DB): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = (await db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).first<{ n: number }>())?.n ?? -1;
  return out;
}

/** The request as the gateway would forward it, served by this worker with `db` as its database. */
async function callWithDb(db: D1Database, path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "clinician-1", scopes: ["phi:read", "phi:write", "audit:read"], roles: ["clinician"] })),
    ...(init.body === undefined ? {} : { "content-type": FHIR }),
    ...init.headers,
  };
  const ctx = createExecutionContext();
  const req = new Request(BASE + path, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  if (!worker.fetch) throw new Error("the worker has no fetch handler");
  const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, DB: db }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** A 503 OperationOutcome that says nothing of the patient, the SQL or the code. */
async function expectOutcome503(res: Response, secrets: string[], code?: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status).toBe(503);
  expect(res.headers.get("content-type")).toContain("application/fhir+json");
  const body = JSON.parse(text) as { resourceType: string; issue: { severity: string; code: string; details: { coding: { code: string }[] } }[] };
  expect(body.resourceType).toBe("OperationOutcome");
  expect(body.issue[0]).toMatchObject({ severity: "fatal", code: "transient" });
  if (code) expect(body.issue[0]?.details.coding[0]?.code).toBe(code);
  expect(text).not.toMatch(/SQLITE|D1_|no such|INSERT|SELECT|resource_versions|search_index|phi_audit|fault_|at \w+ \(/i);
  for (const s of secrets) expect(text).not.toContain(s);
  return body;
}

async function lastAudit(): Promise<{ action: string; outcome: string; reason: string; resource_id: string }> {
  const row = await env.DB.prepare("SELECT action, outcome, reason, resource_id FROM phi_audit ORDER BY seq DESC LIMIT 1").first<{ action: string; outcome: string; reason: string; resource_id: string }>();
  if (!row) throw new Error("no audit record");
  return row;
}

/** After the fault: the same create, update and read succeed, and the chain verifies. */
async function expectRecovery(id: string, resource: Record<string, unknown>, newFamily: string): Promise<void> {
  const created = await createPatient(patient(newFamily, "Rita"));
  expect(created.res.status).toBe(201);
  const upd = await call(`/Patient/${id}`, { method: "PUT", body: { ...resource, gender: "other" } });
  expect(upd.status).toBe(200);
  expect(await json(upd)).toMatchObject({ gender: "other" });
  const read = await call(`/Patient/${created.id}`);
  expect(read.status).toBe(200);
  expect(await json(read)).toMatchObject({ name: [{ family: newFamily }] });
  expect(await verifyChain(env.DB, PHI_CHAIN)).toMatchObject({ ok: true });
}

describe("faults: D1 unavailable", () => {
  it("a database without its tables: create, update and read answer 503 OperationOutcome; nothing written; then they succeed", async () => {
    const p = await createPatient(patient("Brokenstore", "Bea"));
    const before = await counts();

    const create = await callWithDb(env.FAULT_DB, "/Patient", { method: "POST", body: patient("Neverwritten", "Nora") });
    await expectOutcome503(create, ["Neverwritten", "Nora"]);
    const update = await callWithDb(env.FAULT_DB, `/Patient/${p.id}`, { method: "PUT", body: { ...p.resource, gender: "other" } });
    await expectOutcome503(update, ["Brokenstore", "Bea"]);
    const read = await callWithDb(env.FAULT_DB, `/Patient/${p.id}`);
    await expectOutcome503(read, ["Brokenstore", "Bea"]);
    // Non-FHIR routes answer problem+json.
    const audit = await callWithDb(env.FAULT_DB, "/audit?limit=5");
    expect(audit.status).toBe(503);
    expect(audit.headers.get("content-type")).toContain("application/problem+json");

    const tables = await env.FAULT_DB.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").first<{ n: number }>();
    expect(tables?.n).toBe(0);
    expect(await counts()).toEqual(before);

    await expectRecovery(p.id, p.resource, "Afterbroken");
  });

  it("the index table gone while a write commits: the batch rolls back whole, the failure is on record, nothing else", async () => {
    const p = await createPatient(patient("Midbatch", "Mia"));
    const before = await counts();
    await env.DB.prepare("ALTER TABLE search_index RENAME TO search_index_fault").run();
    try {
      const create = await call("/Patient", { method: "POST", body: patient("Halfwritten", "Hana") });
      await expectOutcome503(create, ["Halfwritten", "Hana"]);
      const update = await call(`/Patient/${p.id}`, { method: "PUT", body: { ...p.resource, gender: "other" } });
      await expectOutcome503(update, ["Midbatch", "Mia"]);
      // The version rows were in the same batch as the index rows: neither is left.
      const versions = await env.DB.prepare("SELECT COUNT(*) AS n FROM resource_versions").first<{ n: number }>();
      expect(versions?.n).toBe(before.resource_versions);
      const index = await env.DB.prepare("SELECT COUNT(*) AS n FROM search_index_fault").first<{ n: number }>();
      expect(index?.n).toBe(before.search_index);
      // Each failed attempt has exactly one record, as a failure.
      const audit = await env.DB.prepare("SELECT COUNT(*) AS n FROM phi_audit").first<{ n: number }>();
      expect(audit?.n).toBe((before.phi_audit ?? 0) + 2);
      const last = await lastAudit();
      expect(last).toMatchObject({ action: "update", resource_id: p.id });
      expect(last.outcome).not.toBe("success");
    } finally {
      await env.DB.prepare("ALTER TABLE search_index_fault RENAME TO search_index").run();
    }
    const unchanged = await json(await call(`/Patient/${p.id}`));
    expect(unchanged).toMatchObject({ gender: "female", meta: { versionId: "1" } });
    await expectRecovery(p.id, p.resource, "Aftermid");
  });

  it("the version table unreadable: a read answers 503 storage_unavailable with Retry-After, recorded as such, no PHI", async () => {
    const p = await createPatient(patient("Unreadable", "Uma"));
    const before = (await counts()).phi_audit ?? 0;
    await env.DB.prepare("ALTER TABLE resource_versions RENAME TO resource_versions_fault").run();
    try {
      const read = await call(`/Patient/${p.id}`);
      expect(read.headers.get("retry-after")).toBe("1");
      await expectOutcome503(read, ["Unreadable", "Uma"], "storage_unavailable");
      const audit = await env.DB.prepare("SELECT COUNT(*) AS n FROM phi_audit").first<{ n: number }>();
      expect(audit?.n).toBe(before + 1);
      expect(await lastAudit()).toMatchObject({ action: "read", resource_id: p.id, reason: "storage_unavailable" });
    } finally {
      await env.DB.prepare("ALTER TABLE resource_versions_fault RENAME TO resource_versions").run();
    }
    await expectRecovery(p.id, p.resource, "Afterunreadable");
  });

  it("the audit table refusing inserts: create, update and read answer 503, no row of any kind, no PHI; then they succeed", async () => {
    const p = await createPatient(patient("Auditless", "Ada"));
    const before = await counts();
    // Not a constraint: the trigger's insert fails as a broken store does (SQLITE_ERROR).
    await env.DB.prepare("CREATE TRIGGER fault_audit_down BEFORE INSERT ON phi_audit BEGIN INSERT INTO fault_missing_table VALUES (1); END").run();
    try {
      const create = await call("/Patient", { method: "POST", body: patient("Unrecorded", "Una") });
      await expectOutcome503(create, ["Unrecorded", "Una"], "audit_unavailable");
      const update = await call(`/Patient/${p.id}`, { method: "PUT", body: { ...p.resource, gender: "other" } });
      await expectOutcome503(update, ["Auditless", "Ada"], "audit_unavailable");
      const read = await call(`/Patient/${p.id}`);
      await expectOutcome503(read, ["Auditless", "Ada", "1980-02-29", "Springfield"], "audit_unavailable");
      expect(await counts()).toEqual(before);
    } finally {
      await env.DB.prepare("DROP TRIGGER fault_audit_down").run();
    }
    await sealAll();
    expect(await verifyChain(env.DB, PHI_CHAIN)).toMatchObject({ ok: true, records: before.phi_audit, pending: 0 });
    await expectRecovery(p.id, p.resource, "Afteraudit");
  });
});
