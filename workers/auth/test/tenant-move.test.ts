import { env } from "cloudflare:test";
import { decodeJwt } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { PRINCIPAL_HEADER, signPrincipal } from "../../../shared/principal";
import { basic, clientToken, FHIR, FORM, form, gw, JSON_CT, randomIp, token, type CreatedClient } from "./helpers";

/**
 * Moving a tenant to another PHI shard (POST /admin/tenants/{id}/move): through the real gateway,
 * the real phi worker over its service binding, and real D1 for every shard.
 */
const SHARDS = [env.PHI_DB, env.PHI_DB_1, env.PHI_DB_2, env.PHI_DB_3];
const CHAIN = { table: "phi_audit", checkpoints: "phi_audit_checkpoints" };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
let platform: string;

interface TenantOut {
  id: string;
  shard: number;
}
interface Moved {
  tenant: TenantOut;
  from_shard: number;
  copied: Record<string, number>;
  source_removed: Record<string, number>;
  source_purged: boolean;
}

function db(shard: number): D1Database {
  const d = SHARDS[shard];
  if (!d) throw new Error(`no shard ${shard}`);
  return d;
}

async function tenantWithClient(name: string): Promise<{ t: TenantOut; c: CreatedClient }> {
  const res = await gw("/admin/tenants", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name }) });
  expect(res.status).toBe(201);
  const t = await res.json<TenantOut>();
  const cr = await gw("/admin/clients", {
    method: "POST",
    headers: { ...bearer(platform), ...JSON_CT },
    body: JSON.stringify({ name: "c", roles: ["clinician", "auditor"], tenant_id: t.id }),
  });
  expect(cr.status).toBe(201);
  return { t, c: await cr.json<CreatedClient>() };
}

function move(id: string, body: unknown, tok = platform): Promise<Response> {
  return gw(`/admin/tenants/${id}/move`, { method: "POST", headers: { ...bearer(tok), ...JSON_CT }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

async function count(d: D1Database, table: string, tenant: string): Promise<number> {
  return (await d.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`).bind(tenant).first<number>("n")) ?? 0;
}

async function state(id: string): Promise<{ shard: number; moving_to: number | null }> {
  const row = await env.DB.prepare("SELECT shard, moving_to FROM tenants WHERE id = ?").bind(id).first<{ shard: number; moving_to: number | null }>();
  if (!row) throw new Error("no tenant");
  return row;
}

/** Patients with several versions (one deleted), Observations, reads: data and audit records on its shard. */
async function seed(tok: string): Promise<void> {
  const h = { ...bearer(tok), ...FHIR };
  const ids: string[] = [];
  for (const family of ["Moveone", "Movetwo"]) {
    const r = await gw("/v1/phi/Patient", { method: "POST", headers: h, body: JSON.stringify({ resourceType: "Patient", name: [{ family }], gender: "female" }) });
    expect(r.status).toBe(201);
    ids.push((await r.json<{ id: string }>()).id);
  }
  const [a = "", b = ""] = ids;
  for (const gender of ["male", "other"]) {
    const r = await gw(`/v1/phi/Patient/${a}`, { method: "PUT", headers: h, body: JSON.stringify({ resourceType: "Patient", id: a, name: [{ family: "Moveone" }], gender }) });
    expect(r.status).toBe(200);
  }
  expect((await gw(`/v1/phi/Patient/${b}`, { method: "DELETE", headers: h })).status).toBe(204);
  for (const value of [72, 80]) {
    const obs = { resourceType: "Observation", status: "final", code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] }, subject: { reference: `Patient/${a}` }, effectiveDateTime: "2026-11-30T10:00:00Z", valueQuantity: { value, unit: "/min", system: "http://unitsofmeasure.org", code: "/min" } };
    expect((await gw("/v1/phi/Observation", { method: "POST", headers: h, body: JSON.stringify(obs) })).status).toBe(201);
  }
  expect((await gw(`/v1/phi/Patient/${a}`, { headers: bearer(tok) })).status).toBe(200);
  expect((await gw("/v1/phi/Patient?family=Moveone", { headers: bearer(tok) })).status).toBe(200);
}

/** Waits until the shard's sealer has linked every record, then verifies the whole chain. */
async function sealedAndVerified(shard: number): Promise<{ ok: boolean; pending: number }> {
  for (let i = 0; i < 60; i++) {
    const pending = (await db(shard).prepare("SELECT COUNT(*) AS n FROM phi_audit WHERE hash IS NULL").first<number>("n")) ?? 0;
    if (pending === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const v = await verifyChain(db(shard), CHAIN);
  return { ok: v.ok && v.complete, pending: v.pending };
}

async function tokenStatus(c: CreatedClient): Promise<Response> {
  return gw("/oauth/token", {
    method: "POST",
    headers: { ...FORM, authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() },
    body: form({ grant_type: "client_credentials" }),
  });
}

describe("moving a tenant to another PHI shard", () => {
  beforeAll(async () => {
    platform = await token("admin");
  });

  it("copies every version and audit record, switches the shard, removes the source's rows, and both chains verify", async () => {
    const { t, c } = await tenantWithClient("Moving Clinic");
    const from = t.shard;
    const to = (from + 1) % SHARDS.length;
    const old = await clientToken(c);
    await seed(old);
    const versions = (await db(from).prepare("SELECT resource_type, id, version_id, deleted FROM resource_versions WHERE tenant_id = ?").bind(t.id).all<{ resource_type: string; id: string; version_id: number; deleted: number }>()).results;
    expect(versions.length).toBe(7);
    const audit = (await db(from).prepare("SELECT seq, request_id, action FROM phi_audit WHERE tenant_id = ? ORDER BY seq").bind(t.id).all<{ seq: number; request_id: string; action: string }>()).results;
    expect(audit.length).toBeGreaterThanOrEqual(9);
    const index = await count(db(from), "search_index", t.id);

    const res = await move(t.id, { shard: to, reason: "rebalance shard load" });
    expect(res.status).toBe(200);
    const m = await res.json<Moved>();
    expect(m.tenant.shard).toBe(to);
    expect(m.from_shard).toBe(from);
    expect(m.copied).toMatchObject({ resource_versions: 7, search_index: index, phi_audit: audit.length });
    expect(m.source_purged).toBe(true);
    expect(m.source_removed).toMatchObject({ resource_versions: 7, search_index: index });
    expect(await state(t.id)).toEqual({ shard: to, moving_to: null });

    // The source keeps no data row of the tenant; its audit records stay (append-only), plus the move-out record.
    expect(await count(db(from), "resource_versions", t.id)).toBe(0);
    expect(await count(db(from), "search_index", t.id)).toBe(0);
    expect(await count(db(from), "phi_audit", t.id)).toBe(audit.length + 1);
    expect(await count(db(to), "resource_versions", t.id)).toBe(7);

    // Old tokens name the old shard: refused. A new one carries the new shard.
    expect((await gw("/v1/phi/Patient?family=Moveone", { headers: bearer(old) })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 1100));
    const fresh = await clientToken(c);
    expect(decodeJwt(fresh).tenant_shard).toBe(to);

    // Every Patient version by vread (a tombstone is 410 Gone); Observations (one version each) by read.
    for (const v of versions) {
      const path = v.resource_type === "Patient" ? `/v1/phi/Patient/${v.id}/_history/${v.version_id}` : `/v1/phi/${v.resource_type}/${v.id}`;
      const r = await gw(path, { headers: bearer(fresh) });
      expect(r.status, path).toBe(v.deleted ? 410 : 200);
    }
    const trail = await gw("/v1/phi/audit?limit=500", { headers: bearer(fresh) });
    expect(trail.status).toBe(200);
    const rows = (await trail.json<{ data: { origin: string | null; request_id: string; action: string; reason: string }[] }>()).data;
    for (const a of audit) {
      expect(rows.filter((r) => r.origin === `${from}:${a.seq}`).map((r) => [r.request_id, r.action])).toEqual([[a.request_id, a.action]]);
    }
    expect(rows.some((r) => r.action === "tenant-move-in" && r.reason === `from-shard-${from}`)).toBe(true);
    // The patient's accounting of disclosures on the new shard holds its accesses from before the move.
    const patient = versions.find((v) => v.resource_type === "Patient" && v.version_id === 3)?.id ?? "";
    const log = await gw(`/v1/phi/Patient/${patient}/$access-log`, { headers: bearer(fresh) });
    expect(log.status).toBe(200);
    const logged = new Set((await log.json<{ data: { request_id: string }[] }>()).data.map((e) => e.request_id));
    const before = (await db(from).prepare("SELECT request_id FROM phi_audit WHERE tenant_id = ? AND instr(',' || patient_ids || ',', ?) > 0").bind(t.id, `,${patient},`).all<{ request_id: string }>()).results;
    expect(before.length).toBeGreaterThanOrEqual(5);
    for (const b of before) expect(logged.has(b.request_id)).toBe(true);

    for (const s of [from, to]) expect(await sealedAndVerified(s), `shard ${s}`).toEqual({ ok: true, pending: 0 });
    const event = await env.DB.prepare("SELECT reason FROM security_events WHERE event_type = 'tenant_moved' ORDER BY id DESC LIMIT 1").first<string>("reason");
    expect(event).toBe(`tenant ${t.id} shard ${from} -> ${to}: rebalance shard load`);
  });

  it("a move that fails halfway leaves the tenant on its source, unfrozen; a retry completes with each record copied once", async () => {
    const { t, c } = await tenantWithClient("Retry Clinic");
    const from = t.shard;
    const to = (from + 2) % SHARDS.length;
    await seed(await clientToken(c));
    const before = await count(db(from), "resource_versions", t.id);
    const audited = await count(db(from), "phi_audit", t.id);
    // The destination refuses the arrival record: the copy is done, verify fails at its last write.
    await db(to).exec(`CREATE TRIGGER move_test_fail BEFORE INSERT ON phi_audit WHEN NEW.tenant_id = '${t.id}' AND NEW.action = 'tenant-move-in' AND NEW.outcome = 'success' BEGIN SELECT RAISE(ABORT, 'test refusal'); END`);
    const failed = await move(t.id, { shard: to, reason: "first attempt" });
    await db(to).exec("DROP TRIGGER move_test_fail");
    expect(failed.status).toBeGreaterThanOrEqual(400);
    expect((await failed.json<{ code?: string; type?: string }>()).type).toContain("tenant_move_failed");
    expect(await state(t.id)).toEqual({ shard: from, moving_to: null });
    expect(await count(db(to), "resource_versions", t.id)).toBe(0);
    expect(await count(db(to), "search_index", t.id)).toBe(0);
    expect(await count(db(from), "resource_versions", t.id)).toBe(before);
    // Readable on the source again, with a token issued after the failed move.
    await new Promise((r) => setTimeout(r, 1100));
    const tok = await clientToken(c);
    expect(decodeJwt(tok).tenant_shard).toBe(from);
    expect((await gw("/v1/phi/Patient?family=Moveone", { headers: bearer(tok) })).status).toBe(200);

    const res = await move(t.id, { shard: to, reason: "second attempt" });
    expect(res.status).toBe(200);
    const origins = (await db(to).prepare("SELECT origin, COUNT(*) AS n FROM phi_audit WHERE tenant_id = ? AND origin IS NOT NULL GROUP BY origin").bind(t.id).all<{ origin: string; n: number }>()).results;
    expect(origins.every((o) => o.n === 1)).toBe(true);
    // Every record of the source (the seeding, the read, the search and the failed attempt's) is there once.
    expect(origins.length).toBe(await count(db(from), "phi_audit", t.id) - 1);
    expect(origins.length).toBeGreaterThan(audited);
    for (const s of [from, to]) expect((await sealedAndVerified(s)).ok, `shard ${s}`).toBe(true);
  });
});

describe("moving a tenant: refusals change nothing", () => {
  let t: TenantOut;
  let c: CreatedClient;
  beforeAll(async () => {
    platform = await token("admin");
    ({ t, c } = await tenantWithClient("Staying Put Clinic"));
  });

  it("bad input, wrong caller, unknown or offboarded tenant, same or undeclared shard: 4xx problem+json", async () => {
    const other = (t.shard + 1) % SHARDS.length;
    const cases: [string, () => Promise<Response>, number, string][] = [
      ["no reason", () => move(t.id, { shard: other }), 400, "invalid_request"],
      ["empty reason", () => move(t.id, { shard: other, reason: "" }), 400, "invalid_request"],
      ["shard as text", () => move(t.id, { shard: String(other), reason: "r" }), 400, "invalid_request"],
      ["negative shard", () => move(t.id, { shard: -1, reason: "r" }), 400, "invalid_request"],
      ["shard past MAX", () => move(t.id, { shard: 16, reason: "r" }), 400, "invalid_request"],
      ["shard not declared", () => move(t.id, { shard: Number(env.PHI_SHARDS), reason: "r" }), 400, "shard_not_declared"],
      ["extra field", () => move(t.id, { shard: other, reason: "r", force: true }), 400, "invalid_request"],
      ["not JSON", () => move(t.id, "shard=1"), 400, "invalid_json"],
      ["same shard", () => move(t.id, { shard: t.shard, reason: "r" }), 409, "same_shard"],
      ["unknown tenant", () => move("ten_nobodyhere", { shard: other, reason: "r" }), 404, "tenant_not_found"],
      ["platform tenant", () => move("ten_platform", { shard: other, reason: "r" }), 404, "tenant_not_found"],
      ["malformed id", () => move("x'; DROP", { shard: other, reason: "r" }), 404, "tenant_not_found"],
    ];
    for (const [name, send, status, code] of cases) {
      const res = await send();
      expect(res.status, name).toBe(status);
      expect(res.headers.get("content-type"), name).toContain("application/problem+json");
      expect((await res.json<{ type: string }>()).type, name).toContain(code);
    }
    const tenantAdmin = await gw("/admin/clients", { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ name: "ta", roles: ["admin"], tenant_id: t.id }) });
    const ta = await clientToken(await tenantAdmin.json<CreatedClient>(), "admin");
    expect((await move(t.id, { shard: other, reason: "r" }, ta)).status).toBe(403);
    expect((await move(t.id, { shard: other, reason: "r" }, await clientToken(c))).status).toBe(403);
    expect((await gw(`/admin/tenants/${t.id}/move`, { method: "POST", headers: JSON_CT, body: "{}" })).status).toBe(401);
    expect(await state(t.id)).toEqual({ shard: t.shard, moving_to: null });
  });

  it("an offboarded tenant is not moved", async () => {
    const { t: gone } = await tenantWithClient("Gone Clinic");
    expect((await gw(`/admin/tenants/${gone.id}`, { method: "DELETE", headers: { ...bearer(platform), ...JSON_CT }, body: JSON.stringify({ reason: "closed" }) })).status).toBe(200);
    const res = await move(gone.id, { shard: (gone.shard + 1) % SHARDS.length, reason: "r" });
    expect(res.status).toBe(409);
    expect((await state(gone.id)).shard).toBe(gone.shard);
  });

  it("while a move is under way: no token for the tenant's clients (503), and a second move is refused (409)", async () => {
    const other = (t.shard + 1) % SHARDS.length;
    await env.DB.prepare("UPDATE tenants SET moving_to = ?, moving_since = ? WHERE id = ?").bind(other, new Date().toISOString(), t.id).run();
    const shown = await gw(`/admin/tenants/${t.id}`, { headers: bearer(platform) });
    expect((await shown.json<{ moving_to: number | null }>()).moving_to).toBe(other);
    const refused = await tokenStatus(c);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect((await refused.json<{ error: string }>()).error).toBe("temporarily_unavailable");
    const second = await move(t.id, { shard: (t.shard + 2) % SHARDS.length, reason: "r" });
    expect(second.status).toBe(409);
    await env.DB.prepare("UPDATE tenants SET moving_to = NULL, moving_since = NULL WHERE id = ?").bind(t.id).run();
    expect((await tokenStatus(c)).status).toBe(200);
  });

  it("phi's internal move route is not reachable through the gateway, and phi refuses any principal but a platform admin's", async () => {
    const body = JSON.stringify({ step: "purge", from: t.shard, to: (t.shard + 1) % SHARDS.length });
    for (const path of [`/v1/phi/internal/tenants/${t.id}/move`, `/internal/tenants/${t.id}/move`, `/v1/phi/../internal/tenants/${t.id}/move`]) {
      const res = await gw(path, { method: "POST", headers: { ...bearer(platform), ...JSON_CT }, body });
      expect(res.status, path).toBe(404);
    }
    const direct = await env.PHI.fetch(new Request(`https://phi.internal/internal/tenants/${t.id}/move`, { method: "POST", headers: JSON_CT, body }));
    expect(direct.status).toBe(401);
    // Signed, but a tenant's principal (even an admin's): refused by phi itself.
    const principal = { sub: "c", clientId: "c", roles: ["admin"], scopes: ["admin"], tokenId: "j", tenantId: t.id, shard: t.shard, ip: "10.0.0.1", iat: Math.floor(Date.now() / 1000) };
    const signed = await env.PHI.fetch(
      new Request(`https://phi.internal/internal/tenants/${t.id}/move`, {
        method: "POST",
        headers: { ...JSON_CT, [PRINCIPAL_HEADER]: await signPrincipal(env.GATEWAY_HMAC_KEY, principal) },
        body,
      }),
    );
    expect(signed.status).toBe(403);
    expect(await state(t.id)).toEqual({ shard: t.shard, moving_to: null });
  });
});
