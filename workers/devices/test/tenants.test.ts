import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { DEVICES_ROUTES } from "../../auth/src/gateway/routes/devices";
import { sessionName, sessionStub } from "../src/session/stub";
import { call, deviceInput, openSocket, reading, sealAll, type Who } from "./helpers";

/**
 * The tenant matrix (issue 18): for every route of the gateway's table, tenant B's clients
 * (writer, clinician, auditor, and a device credential naming A's device) aimed at tenant A's
 * device get exactly what a device id that does not exist gets (404, same body but for the
 * request id), or a list without A's devices; and A's rows and session data are the same after.
 */
const TA = "ten_alpha";
const TB = "ten_beta";
const all = (tenantId: string, sub: string): Who => ({ sub, tenantId, scopes: ["device:write", "device:read", "device:connect", "audit:read"] });
const A = all(TA, "cli_alpha");
const B = all(TB, "cli_beta");
/** A device credential of tenant B that names A's device id (as a token minted in B for that id would). */
const bDevice = (deviceId: string): Who => ({ sub: `cli_b_${deviceId}`, tenantId: TB, roles: ["device"], scopes: ["device:connect"], deviceId });
const GHOST = "dev_nothingHereAtAll1";
const TABLES = ["devices", "thresholds", "device_audit"];

interface Fixture {
  id: string;
  input: ReturnType<typeof deviceInput>;
}

async function ok<T>(res: Response, status: number): Promise<T> {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${await res.text()}`);
  return res.json<T>();
}

async function setup(): Promise<Fixture> {
  // Both tenants exist in auth (registering a device creates its credential there, in the device's tenant).
  for (const [id, shard] of [
    [TA, 1],
    [TB, 2],
  ] as const) {
    await env.AUTH_DB.prepare("INSERT OR IGNORE INTO tenants (id, name, name_key, shard, created_at, created_by) VALUES (?, ?, ?, ?, ?, 'test')")
      .bind(id, id, id, shard, new Date().toISOString())
      .run();
  }
  const input = deviceInput();
  const dev = await ok<{ id: string }>(await call(A, "/v1/devices", { method: "POST", body: input }), 201);
  const limits = { limits: { "150456": { low: 90 } }, reason: "ward default" };
  await ok(await call(A, `/v1/devices/${dev.id}/thresholds`, { method: "PUT", body: limits, headers: { "if-match": '"0"' } }), 200);
  const asA = { ...bDevice(dev.id), sub: `cli_${dev.id}`, tenantId: TA };
  const posted = await ok<{ stored: number; alarms: number }>(await call(asA, `/v1/devices/${dev.id}/readings`, { method: "POST", body: { readings: [reading(1), reading(2, { value: 80 })] } }), 200);
  expect(posted).toMatchObject({ stored: 2, alarms: 1 });
  return { id: dev.id, input };
}

/** A's rows of every tenant table (audit rows without their seal columns: the sealer sets those on its own), and its session's data. */
async function aState(id: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const table of TABLES) {
    const { results } = await env.DB.prepare(`SELECT * FROM ${table} WHERE tenant_id = ? ORDER BY rowid`).bind(TA).all<Record<string, unknown>>();
    out[table] = table === "device_audit" ? results.map(({ prev_hash: _p, hash: _h, sealed_at: _s, ...data }) => data) : results;
  }
  const stub = sessionStub(env, TA, id);
  out.readings = await stub.history({ limit: 100 });
  out.alarms = await stub.alarms({ limit: 100 });
  out.thresholdsVersion = (await stub.status(id)).thresholds_version;
  return out;
}

async function problemOf(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const { request_id: _r, ...rest } = await res.json<Record<string, unknown>>();
  return rest;
}

/** B's answer for A's device is the answer for a device that does not exist, but the request id. */
async function sameAsMissing(send: (id: string) => Promise<Response>, aId: string): Promise<void> {
  const theirs = await send(aId);
  const none = await send(GHOST);
  expect(theirs.status).toBe(404);
  expect(none.status).toBe(404);
  expect(await problemOf(theirs)).toEqual(await problemOf(none));
}

const socket = (who: (id: string) => Who, path: (id: string) => string) => async (id: string) => (await openSocket(who(id), path(id))).res;

type Case = (f: Fixture) => Promise<void>;

/** One case per route of the gateway's table (`METHOD path` as the table writes it). */
const CASES: Record<string, Case> = {
  "POST /": async (f) => {
    // UDI and serial are unique per tenant: B registers the same ones without learning A has them.
    const res = await call(B, "/v1/devices", { method: "POST", body: f.input });
    expect(res.status).toBe(201);
    expect((await res.json<{ id: string }>()).id).not.toBe(f.id);
  },
  "GET /": async (f) => {
    const page = await ok<{ data: { id: string }[] }>(await call(B, "/v1/devices?limit=100", {}), 200);
    expect(page.data.map((d) => d.id)).not.toContain(f.id);
    expect((await ok<{ data: { id: string }[] }>(await call(B, "/v1/devices?status=active&limit=100", {}), 200)).data.map((d) => d.id)).not.toContain(f.id);
  },
  "GET /:id": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}`), f.id),
  "POST /:id/decommission": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}/decommission`, { method: "POST", body: { reason: "gone" } }), f.id),
  "GET /:id/session": (f) => sameAsMissing(socket(bDevice, (id) => `/v1/devices/${id}/session`), f.id),
  "POST /:id/readings": (f) => sameAsMissing((id) => call(bDevice(id), `/v1/devices/${id}/readings`, { method: "POST", body: { readings: [reading(1, { value: 1 })] } }), f.id),
  "GET /:id/readings": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}/readings`), f.id),
  "GET /:id/live": (f) => sameAsMissing(socket(() => B, (id) => `/v1/devices/${id}/live`), f.id),
  "GET /:id/status": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}/status`), f.id),
  "GET /:id/thresholds": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}/thresholds`), f.id),
  "PUT /:id/thresholds": (f) =>
    sameAsMissing((id) => call(B, `/v1/devices/${id}/thresholds`, { method: "PUT", body: { limits: {}, reason: "x" }, headers: { "if-match": '"1"' } }), f.id),
  "GET /:id/alarms": (f) => sameAsMissing((id) => call(B, `/v1/devices/${id}/alarms`), f.id),
  "GET /:id/audit": async (f) => {
    await sameAsMissing((id) => call(B, `/v1/devices/${id}/audit`), f.id);
    await sameAsMissing((id) => call(B, `/v1/devices/${id}/audit?verify=true`), f.id);
  },
};

describe("tenant matrix: tenant B against tenant A's devices", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await setup();
  });

  it("has a case for every route of the gateway's table (a new route without one fails here)", () => {
    expect(Object.keys(CASES).sort()).toEqual(DEVICES_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it("stamps A's rows with A's tenant and keeps A's session in an object of its own", async () => {
    const state = await aState(f.id);
    for (const table of TABLES) expect((state[table] as unknown[]).length, table).toBeGreaterThan(0);
    expect(state.readings).toHaveLength(2);
    expect(sessionName(TA, f.id)).not.toBe(sessionName(TB, f.id));
    // The object B's name would reach holds nothing of A's.
    expect(await sessionStub(env, TB, f.id).history({ limit: 100 })).toEqual([]);
  });

  it.each(DEVICES_ROUTES.map((r) => `${r.method} ${r.path}`))("%s: B gets A's device as missing, and A's data stays as it was", async (key) => {
    const run = CASES[key];
    if (!run) throw new Error(`no tenant case for ${key}`);
    const before = await aState(f.id);
    await run(f);
    expect(await aState(f.id)).toEqual(before);
  });

  it("lists each tenant's audit records only, and verifies the one chain for a tenant's auditor", async () => {
    const mine = await ok<{ data: { tenant_id: string }[]; chain: Record<string, unknown> }>(await call(A, `/v1/devices/${f.id}/audit?verify=true`), 200);
    expect(mine.data.map((r) => r.tenant_id)).toEqual([TA, TA]);
    await sealAll();
    const bId = (await ok<{ data: { id: string }[] }>(await call(B, "/v1/devices"), 200)).data[0]?.id ?? "";
    const theirs = await ok<{ data: { tenant_id: string }[]; chain: Record<string, unknown> }>(await call(B, `/v1/devices/${bId}/audit?verify=true`), 200);
    expect(theirs.data.length).toBeGreaterThan(0);
    expect(theirs.data.every((r) => r.tenant_id === TB)).toBe(true);
    // The chain holds both tenants' records; its answer is seqs, hashes and counts, no record.
    expect(theirs.chain).toMatchObject({ ok: true, complete: true });
    expect(Object.keys(theirs.chain).sort()).toEqual(["checkpoint", "complete", "from", "head", "next_after", "ok", "pending", "records", "sealed", "to"]);
    // A platform client owns no device: its verify is refused like any missing device.
    const platform: Who = { sub: "cli_platform_auditor", tenantId: "ten_platform", scopes: ["audit:read", "device:read"] };
    expect((await call(platform, `/v1/devices/${f.id}/audit?verify=true`)).status).toBe(404);
    expect((await ok<{ data: unknown[] }>(await call(platform, "/v1/devices"), 200)).data).toEqual([]);
    expect((await ok<{ status: string }>(await call(A, `/v1/devices/${f.id}`), 200)).status).toBe("active");
  });
});
