import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { EnvironmentName } from "../../../shared/config";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { LIMITS } from "../src/config";
import type { Patient } from "../src/fhir/patient";
import { SYSTEMS } from "../src/generator/constants";
import { generatePatient } from "../src/generator/patient";
import { app } from "../src/index";
import { classifyPhiResponse, ifNoneExist } from "../src/load/phi-client";
import { loadPolicy } from "../src/load/policy";
import type { LoadReport } from "../src/schemas/load";

const URL_LOAD = "https://synthetic.internal/v1/synthetic/load";
const LOADER_SCOPES = ["synthetic:generate", "phi:write", "phi:read"];

async function post(body: unknown, opts: { scopes?: string[]; key?: string; contentType?: string } = {}) {
  const headers = await gatewayHeaders(opts.key ?? env.GATEWAY_HMAC_KEY, { sub: "qa-loader", scopes: opts.scopes ?? LOADER_SCOPES });
  return new Request(URL_LOAD, {
    method: "POST",
    headers: { ...headers, "content-type": opts.contentType ?? "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The real worker with its real bindings, under another configuration (vars only). */
async function withVars(req: Request, vars: Record<string, string>): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(req, { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}


type Problem = { code: string; detail?: string; reason?: string; limit?: number; report?: LoadReport };

describe("load policy (pure)", () => {
  it("refuses production whatever ALLOW_LOAD says, and elsewhere follows ALLOW_LOAD", () => {
    for (const environment of EnvironmentName.options) {
      for (const allowLoad of [true, false]) {
        const d = loadPolicy({ environment, allowLoad });
        if (environment === "production") expect(d).toEqual({ ok: false, reason: "production" });
        else if (!allowLoad) expect(d).toEqual({ ok: false, reason: "disabled" });
        else expect(d).toEqual({ ok: true });
      }
    }
  });
});

describe("phi answers (pure): what makes reloads idempotent", () => {
  const patient = { resourceType: "Patient", id: "p-1" };
  it.each([
    [201, patient, { outcome: "created", id: "p-1" }],
    [200, patient, { outcome: "existing", id: "p-1" }],
    [200, { resourceType: "Observation", id: "x" }, { outcome: "failed", status: 502, code: "invalid_phi_response" }],
    [201, undefined, { outcome: "failed", status: 502, code: "invalid_phi_response" }],
    [404, { code: "not_found", detail: "No route" }, { outcome: "failed", status: 404, code: "not_found" }],
    [401, { code: "unauthenticated" }, { outcome: "failed", status: 401, code: "unauthenticated" }],
    [412, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "duplicate" }] }, { outcome: "failed", status: 412, code: "duplicate" }],
    [500, { code: "Has Spaces And PHI?" }, { outcome: "failed", status: 500, code: "unknown" }],
    [503, undefined, { outcome: "failed", status: 503, code: "unknown" }],
  ])("status %i -> %j", (status, body, expected) => {
    expect(classifyPhiResponse(status, body)).toEqual(expected);
  });

  it("asks phi for a conditional create on the synthetic identifier", () => {
    expect(ifNoneExist({ system: SYSTEMS.patient, value: "seed-1:42" })).toBe(
      "identifier=urn:health-platform:synthetic:patient|seed-1:42",
    );
  });
});

describe("POST /v1/synthetic/load: refusals", () => {
  it("is refused (403) in production even when ALLOW_LOAD is true, before any work", async () => {
    const res = await withVars(await post({ count: 1, seed: "prod" }), { ENVIRONMENT: "production", ALLOW_LOAD: "true" });
    expect(res.status).toBe(403);
    expect(await res.json<Problem>()).toMatchObject({ code: "load_disabled", reason: "production" });
  });

  it("is refused (403) where ALLOW_LOAD is false or unset", async () => {
    let res = await withVars(await post({ count: 1, seed: "off" }), { ENVIRONMENT: "staging", ALLOW_LOAD: "false" });
    expect(await res.json<Problem>()).toMatchObject({ code: "load_disabled", reason: "disabled" });
    const { ALLOW_LOAD: _dropped, ...rest } = env as unknown as Record<string, unknown>;
    const ctx = createExecutionContext();
    res = await app.fetch(await post({ count: 1, seed: "off" }), rest, ctx);
    expect(res.status).toBe(403);
  });

  it("needs phi:write besides synthetic:generate", async () => {
    const res = await SELF.fetch(await post({ count: 1, seed: "s" }, { scopes: ["synthetic:generate"] }));
    expect(res.status).toBe(403);
    expect((await res.json<Problem>()).code).toBe("insufficient_scope");
  });

  it("refuses what is not JSON (415) and invalid bodies (400), naming the load limit", async () => {
    expect((await SELF.fetch(await post("count=1", { contentType: "application/x-www-form-urlencoded" }))).status).toBe(415);
    for (const body of ["{not json", { count: 0, seed: "s" }, { count: 1 }, { count: 1, seed: "a:b" }, { count: 1, seed: "s", extra: 1 }, { count: 1.5, seed: "s" }, { count: 1, seed: "s", reference_date: "2023-02-30" }]) {
      const res = await SELF.fetch(await post(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const res = await SELF.fetch(await post({ count: LIMITS.load + 1, seed: "s" }));
    expect(res.status).toBe(400);
    const p = await res.json<Problem>();
    expect(p).toMatchObject({ code: "limit_exceeded", limit: LIMITS.load });
    expect(p.detail).toContain(String(LIMITS.load));
    const far = await SELF.fetch(await post({ count: 2, seed: "s", offset: LIMITS.index - 1 }));
    expect(await far.json<Problem>()).toMatchObject({ code: "limit_exceeded", limit: LIMITS.index });
  });
});

describe("POST /v1/synthetic/load: partial failure against the phi binding", () => {
  it("reports phi's 401 when the principal it receives is not signed with its key", async () => {
    // Another gateway key for this worker only: it accepts the caller, phi refuses what it re-signs.
    const key = "another-gateway-key-another-gateway-key";
    const res = await withVars(await post({ count: 3, seed: "badkey", offset: 7 }, { key }), { GATEWAY_HMAC_KEY: key, LOAD_BATCH_SIZE: "2" });
    expect(res.status).toBe(502);
    const report = (await res.json<Problem>()).report;
    expect(report?.failed).toEqual([
      { index: 7, status: 401, code: "login" },
      { index: 8, status: 401, code: "login" },
    ]);
    expect(report?.not_attempted).toBe(1);
  });
});

describe("POST /v1/synthetic/load into phi", () => {
  it("creates the patients, and a rerun of the seed finds them all: none duplicated", async () => {
    const first = await SELF.fetch(await post({ count: 25, seed: "real" }));
    expect(first.status).toBe(200);
    const r1 = await first.json<LoadReport>();
    expect(r1.created.map((x) => x.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(r1.existing).toEqual([]);
    const again = await SELF.fetch(await post({ count: 25, seed: "real" }));
    expect(again.status).toBe(200);
    const r2 = await again.json<LoadReport>();
    expect(r2.created).toEqual([]);
    expect(r2.existing).toEqual(r1.created);
  });

  it("makes loaded patients readable in phi under their synthetic identifier", async () => {
    const headers = await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "reader", scopes: ["phi:read"] });
    const q = encodeURIComponent(`${SYSTEMS.patient}|real:3`);
    const res = await env.PHI.fetch(`https://phi.internal/v1/phi/Patient?identifier=${q}`, { headers });
    expect(res.status).toBe(200);
    const found = await res.json<{ entry?: { resource: Patient }[] }>();
    expect(found.entry).toHaveLength(1);
    const expected = generatePatient({ seed: "real", referenceDate: "2025-01-01", observations: false }, 3).patient;
    expect(found.entry?.[0]?.resource.name).toEqual(expected.name);
    expect(found.entry?.[0]?.resource.birthDate).toBe(expected.birthDate);
  });
});
