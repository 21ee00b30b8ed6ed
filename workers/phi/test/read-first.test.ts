import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { app } from "../src/index";
import { auditRows, BASE, call, createPatient, json, patient, type AuditRecordJson } from "./helpers";

/** The same request through the Hono app itself (the path every read took before src/read-first.ts). */
async function viaApp(url: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(url, init), env, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

/** Headers that differ per request by design. */
const PER_REQUEST = new Set(["date", "x-d1-bookmark", "content-length"]);

function comparable(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([k]) => !PER_REQUEST.has(k)).sort(([a], [b]) => a.localeCompare(b)));
}

/** What a record says about an access (everything but its place in the trail and its time). */
function said(r: AuditRecordJson | undefined): Record<string, unknown> {
  const { seq: _seq, at: _at, prev_hash: _p, hash: _h, sealed_at: _s, ...rest } = r ?? ({} as AuditRecordJson);
  return rest;
}

async function headers(extra: Record<string, string> = {}, scopes = ["phi:read"]): Promise<Record<string, string>> {
  return {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "clinician-1", scopes, roles: ["clinician"] })),
    "x-purpose-of-use": "TREAT",
    traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ...extra,
  };
}

afterEach(() => vi.restoreAllMocks());

describe("phi's read without the app (src/read-first.ts)", () => {
  it("answers a read exactly as the app does, and records it the same way, without the app", async () => {
    const live = await createPatient(patient("FastPath"));
    const gone = await createPatient(patient("FastGone"));
    expect((await call(`/Patient/${gone.id}`, { method: "DELETE" })).status).toBe(204);
    const obs = await call("/Observation", {
      method: "POST",
      body: { resourceType: "Observation", status: "final", code: { text: "pulse" }, subject: { reference: `Patient/${live.id}` }, valueQuantity: { value: 72, unit: "/min" } },
    });
    const obsId = String((await json(obs)).id);
    const missing = crypto.randomUUID();
    for (const path of [`/Patient/${live.id}`, `/Patient/${missing}`, `/Patient/${gone.id}`, `/Observation/${obsId}`, `/Observation/${missing}`]) {
      // One request id for both, so what names it (an OperationOutcome's diagnostics, the record) matches too.
      const init = { headers: await headers({ "x-request-id": `cmp-${crypto.randomUUID()}` }) };
      const toApp = vi.spyOn(app, "fetch");
      const fast = await SELF.fetch(BASE + path, init);
      expect(toApp, path).not.toHaveBeenCalled();
      toApp.mockRestore();
      const fastRecord = (await auditRows()).at(-1);
      const slow = await viaApp(BASE + path, init);
      const slowRecord = (await auditRows()).at(-1);
      expect(fast.status, path).toBe(slow.status);
      expect(comparable(fast), path).toEqual(comparable(slow));
      expect(fast.headers.get("x-d1-bookmark"), path).toBeTruthy();
      expect(await fast.json(), path).toEqual(await slow.json());
      expect(fastRecord?.seq).not.toBe(slowRecord?.seq);
      expect(said(fastRecord), path).toEqual(said(slowRecord));
    }
    // The statuses the loop compared: a read, a missing one, a deleted one.
    const codes = await Promise.all([`/Patient/${live.id}`, `/Patient/${missing}`, `/Patient/${gone.id}`].map(async (p) => (await SELF.fetch(BASE + p, { headers: await headers() })).status));
    expect(codes).toEqual([200, 404, 410]);
  });

  it("leaves everything else to the app, before anything was recorded: one answer and one record each", async () => {
    const { id } = await createPatient(patient("FastElse"));
    const cases: [string, RequestInit, number][] = [
      [`/Patient/${id}?_format=json`, { headers: await headers() }, 200],
      [`/Patient/${id}/_history/1`, { headers: await headers() }, 200],
      [`/Patient/${id}`, { method: "HEAD", headers: await headers() }, 200],
      [`/Patient/${id}`, { headers: await headers({ "x-purpose-of-use": "not a code!" }) }, 400],
      [`/Patient/${id}`, { headers: await headers({ "x-d1-bookmark": "not-a-bookmark" }) }, 400],
      [`/Patient/${id}`, { headers: await headers({}, ["phi:write"]) }, 403],
      [`/Observation/${id}`, { headers: await headers({}, ["patient/Patient.r"]) }, 403],
      ["/Patient/bad_id!", { headers: await headers() }, 400],
    ];
    for (const [path, init, status] of cases) {
      const before = (await auditRows()).length;
      const toApp = vi.spyOn(app, "fetch");
      const res = await SELF.fetch(BASE + path, init);
      expect(res.status, path).toBe(status);
      expect(toApp, path).toHaveBeenCalledTimes(1);
      toApp.mockRestore();
      expect((await auditRows()).length, path).toBe(before + 1);
    }
    // No principal: the app's 401 (nothing to record: no one is known).
    const toApp = vi.spyOn(app, "fetch");
    expect((await SELF.fetch(`${BASE}/Patient/${id}`)).status).toBe(401);
    expect(toApp).toHaveBeenCalledTimes(1);
  });

  it("hands a read whose batch failed as a whole to the app, which answers 503 without PHI", async () => {
    const { id } = await createPatient(patient("FastOffline"));
    const before = (await auditRows()).length;
    await env.DB.prepare("CREATE TRIGGER fast_reads_offline BEFORE INSERT ON phi_audit WHEN NEW.action = 'read' BEGIN SELECT RAISE(ABORT, 'audit offline'); END").run();
    try {
      const toApp = vi.spyOn(app, "fetch");
      const res = await SELF.fetch(`${BASE}/Patient/${id}`, { headers: await headers() });
      expect(toApp).toHaveBeenCalledTimes(1);
      expect(res.status).toBe(503);
      const body = await res.text();
      expect(body).toContain("audit_unavailable");
      expect(body).not.toContain("FastOffline");
    } finally {
      await env.DB.prepare("DROP TRIGGER fast_reads_offline").run();
    }
    expect((await auditRows()).length).toBe(before);
  });
});
