import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { asInsider, auditRows, call, createPatient, form, json, patient, sealAll } from "./helpers";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";

describe("audit trail: one record per access", () => {
  it("records allowed and denied accesses with actor, purpose, request and trace ids, and never PHI", async () => {
    const before = (await auditRows()).length;
    const headers = { "x-purpose-of-use": "TREAT", traceparent: `00-${TRACE}-00f067aa0ba902b7-01` };
    const created = await call("/Patient", { method: "POST", body: patient("Auditable", "Zed"), headers });
    const id = String((await json(created)).id);
    const reqId = created.headers.get("x-request-id");
    await call(`/Patient/${id}`, { headers });
    await call(`/Patient/${id}`, { as: { sub: "no-scope", scopes: ["phi:write"] } }); // denied: missing phi:read
    await call(`/Patient/${id}`, { headers: { "x-purpose-of-use": "not a code!" } }); // failed: bad purpose
    await call("/Patient/00000000-0000-4000-8000-000000000000"); // failed: not found
    await call("/Patient", { method: "POST", body: { resourceType: "Patient", gender: "robot" } }); // failed: invalid
    await call("/Patient/_search", form({ family: "Auditable" }));

    const rows = (await auditRows()).slice(before);
    expect(rows.map((r) => [r.action, r.outcome, r.reason])).toEqual([
      ["create", "success", ""],
      ["read", "success", ""],
      ["read", "denied", "insufficient_scope"],
      ["read", "failed", "invalid_purpose_of_use"],
      ["read", "failed", "not_found"],
      ["create", "failed", "invalid_request"],
      ["search", "success", ""],
    ]);
    expect(rows[0]).toMatchObject({ purpose_of_use: "TREAT", trace_id: TRACE, request_id: reqId, patient_ids: id, actor_sub: "clinician-1" });
    expect(rows[0]?.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(rows[2]).toMatchObject({ actor_sub: "no-scope", patient_ids: id, purpose_of_use: "unspecified" });
    expect(rows[6]?.patient_ids).toBe(id);
    expect(JSON.stringify(rows)).not.toMatch(/Auditable|Zed|555-0100|1980-02-29|Main St/);
  });

  it("ids a client chose (a name, an SSN in a URL or a subject) never reach the trail; server ids do", async () => {
    const { id } = await createPatient(patient("Idkept"));
    const before = (await auditRows()).length;
    const bundle = (entry: unknown[]) => call("", { method: "POST", body: { resourceType: "Bundle", type: "transaction", entry } });
    const obs = (subject: string) => ({ resourceType: "Observation", status: "final", code: { text: "pulse" }, subject: { reference: subject } });
    expect((await bundle([{ request: { method: "GET", url: "Patient/123-45-6789" } }])).status).toBe(404);
    expect((await bundle([{ resource: obs("Patient/JohnSmith"), request: { method: "POST", url: "Observation" } }])).status).toBe(422);
    expect((await call("/Observation", { method: "POST", body: obs("Patient/JohnSmith") })).status).toBe(422);
    expect((await call("/Patient/123-45-6789")).status).toBe(404);
    // Server ids the request named are still recorded, failed or not.
    expect((await bundle([{ request: { method: "GET", url: `Patient/${id}` } }, { request: { method: "GET", url: "Patient/123-45-6789" } }])).status).toBe(404);
    expect((await call("/Observation", { method: "POST", body: obs("Patient/JaneDoe") })).status).toBe(422);
    const unknown = crypto.randomUUID();
    expect((await call("/Observation", { method: "POST", body: obs(`Patient/${unknown}`) })).status).toBe(422);

    const rows = (await auditRows()).slice(before);
    expect(rows.map((r) => [r.action, r.resource_id, r.patient_ids, r.outcome, r.reason])).toEqual([
      ["bundle", "", "", "failed", "not_found"],
      ["bundle", "", "", "failed", "unknown_subject"],
      ["create", "", "", "failed", "unknown_subject"],
      ["read", "(not a server id)", "(not a server id)", "failed", "not_found"],
      ["bundle", "", id, "failed", "not_found"],
      ["create", "", "", "failed", "unknown_subject"],
      ["create", "", unknown, "failed", "unknown_subject"],
    ]);
    expect(JSON.stringify(rows)).not.toMatch(/123-45-6789|JohnSmith|JaneDoe/);
  });

  it("verifies a long chain in segments: a walk agrees with one pass, a break is named by its segment, bad ranges are 400", async () => {
    type Verify = { ok: boolean; records: number; head?: string; broken_at?: number; reason?: string; from: number | null; to: number | null; next_after: number | null; complete: boolean; sealed: number; pending: number };
    const verify = async (query = "") => {
      const res = await call(`/audit/verify${query}`);
      expect(res.status).toBe(200);
      return json<Verify>(res);
    };
    const count = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM phi_audit").first<{ n: number }>())?.n ?? 0;
    const hashAt = async (seq: number | null) => (await env.DB.prepare("SELECT hash FROM phi_audit WHERE seq = ?").bind(seq).first<{ hash: string }>())?.hash;
    for (let i = 0; i < 40 && (await count()) < 30; i++) await createPatient(patient(`Segment${i}`));
    expect(await count()).toBeGreaterThanOrEqual(30);

    // One pass with the defaults (what old callers get): everything sealed, verified before this access is recorded.
    await sealAll();
    const before = await count();
    const full = await verify();
    expect(full).toMatchObject({ ok: true, records: before, from: 1, to: before, next_after: null, complete: true, sealed: before, pending: 0 });
    expect(full).toMatchObject({ checkpoint: { sealed_up_to: before, head_hash: full.head, sealed_count: before } });
    expect(full.head).toBe(await hashAt(before));

    // Walk segments of 6; each request adds its own record after checking, which the walk then catches up with.
    const segments: Verify[] = [];
    let after: number | null = 0;
    while (after !== null && segments.length < 30) {
      const s = await verify(`?after=${after}&limit=6`);
      segments.push(s);
      after = s.next_after;
    }
    const last = segments.at(-1);
    // The walk's own records are pending until sealed: it covers what was sealed when it began.
    expect(segments.length).toBeGreaterThanOrEqual(5);
    expect(segments.every((s) => s.ok)).toBe(true);
    segments.forEach((s, i) => expect([s.from, s.records]).toEqual([i * 6 + 1, s === last ? (last.to ?? 0) - i * 6 : 6]));
    expect(segments.slice(0, -1).every((s) => !s.complete && s.next_after === s.to)).toBe(true);
    expect(last).toMatchObject({ complete: true, next_after: null });
    expect(last?.head).toBe(await hashAt(last?.to ?? null));
    // The same records in one segment: the same verdict and head (the walk's own records, sealed now, follow it).
    await sealAll();
    expect(await verify(`?after=0&limit=${last?.to}`)).toMatchObject({ ok: true, records: last?.to, head: last?.head, complete: false });

    // Tamper with a record inside the 2nd segment: the 1st still verifies, the 2nd names the record.
    const original = await env.DB.prepare("SELECT actor_sub FROM phi_audit WHERE seq = 9").first<{ actor_sub: string }>();
    await asInsider(() => env.DB.prepare("UPDATE phi_audit SET actor_sub = 'someone-else' WHERE seq = 9").run());
    try {
      expect(await verify("?limit=6")).toMatchObject({ ok: true, records: 6, to: 6, next_after: 6 });
      expect(await verify("?after=6&limit=6")).toMatchObject({ ok: false, records: 2, broken_at: 9, reason: "hash_mismatch", from: 7, to: 8, next_after: null, complete: false });
    } finally {
      await asInsider(() => env.DB.prepare("UPDATE phi_audit SET actor_sub = ? WHERE seq = 9").bind(original?.actor_sub ?? null).run());
    }
    expect((await verify()).ok).toBe(true);

    // After the head: a 404 problem, recorded as a failed verify with that reason.
    const past = await call(`/audit/verify?after=${(await count()) + 3}`);
    expect(past.status).toBe(404);
    expect(past.headers.get("content-type")).toContain("application/problem+json");
    expect((await json(past)).code).toBe("audit_record_not_found");
    expect((await auditRows()).at(-1)).toMatchObject({ action: "audit-verify", outcome: "failed", reason: "audit_record_not_found" });
    for (const q of ["after=-1", "after=abc", "after=2.5", "limit=0", "limit=100001", "limit=many"]) {
      const bad = await call(`/audit/verify?${q}`);
      expect(bad.status, q).toBe(400);
      expect(bad.headers.get("content-type"), q).toContain("application/problem+json");
    }
    expect((await call("/audit/verify?after=1", { as: { scopes: ["phi:read"] } })).status).toBe(403);
  });

  it("verifies the chain, reports the first tampered record, and serves filtered pages to auditors", async () => {
    const p = await createPatient(patient("Chained"));
    await call(`/Patient/${p.id}`, { headers: { "x-purpose-of-use": "HOPERAT" } });
    const ok = await call("/audit/verify");
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ ok: true });

    const forPatient = await json<{ data: { action: string; seq: number }[]; next_cursor: number | null }>(
      await call(`/audit?patient=${p.id}&limit=1`),
    );
    expect(forPatient.data).toHaveLength(1);
    expect(forPatient.data[0]?.action).toBe("create");
    const next = await json<{ data: { action: string }[] }>(await call(`/audit?patient=${p.id}&limit=5&cursor=${forPatient.next_cursor}`));
    expect(next.data.map((r) => r.action)).toEqual(["read"]);
    const byActor = await json<{ data: unknown[] }>(await call(`/audit?actor=nobody-at-all`));
    expect(byActor.data).toHaveLength(0);
    const since = await json<{ data: unknown[] }>(await call(`/audit?since=2999-01-01T00:00:00Z`));
    expect(since.data).toHaveLength(0);
    const until = await json<{ data: unknown[] }>(await call(`/audit?until=2999-01-01T00:00:00Z&limit=2`));
    expect(until.data).toHaveLength(2);
    expect((await call("/audit?since=yesterday")).status).toBe(400);
    expect((await call("/audit", { as: { scopes: ["phi:read"] } })).status).toBe(403);

    const log = await json<{ data: { action: string; purpose_of_use: string; actor: { sub: string } }[] }>(await call(`/Patient/${p.id}/$access-log`));
    expect(log.data.map((e) => [e.action, e.purpose_of_use])).toEqual([
      ["create", "unspecified"],
      ["read", "HOPERAT"],
    ]);
    expect((await call(`/Patient/${p.id}/$access-log`, { as: { scopes: ["phi:read"] } })).status).toBe(403);
    // No accounting for a record that does not exist.
    const unknown = await call(`/Patient/no-such-patient/$access-log`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json<{ resourceType: string }>()).resourceType).toBe("OperationOutcome");

    // An insider edits one record in place: verify names it.
    await sealAll();
    const target = (await auditRows()).find((r) => r.action === "read" && r.patient_ids === p.id);
    await expect(env.DB.prepare("UPDATE phi_audit SET actor_sub = 'someone-else' WHERE seq = ?").bind(target?.seq).run()).rejects.toThrow(/append-only/);
    await asInsider(() => env.DB.prepare("UPDATE phi_audit SET actor_sub = 'someone-else' WHERE seq = ?").bind(target?.seq).run());
    const broken = await json(await call("/audit/verify"));
    expect(broken).toMatchObject({ ok: false, broken_at: target?.seq, reason: "hash_mismatch" });
  });
});
