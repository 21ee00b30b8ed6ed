import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { verifyChain } from "../../../shared/audit-chain";
import { isStorageError, storageErrorCode } from "../../../shared/errors";
import { counter, pointCount } from "../../../shared/metrics";
import { scheduleMetricsFlush } from "../../../shared/metrics-export";
import worker from "../src/index";
import { BASE, bootstrapAuth, clientToken, createClient, form, FORM, gw, randomIp, token } from "./helpers";

/**
 * Faults, all real: the token service's D1 binding pointing at a database without
 * its tables (swapped in for one request) or losing a table mid-test; an internal
 * worker that throws (a real service binding to a test-only worker, swapped in for
 * one request); internal workers answering 500 and 503 for real. The client gets a
 * generic problem (or OperationOutcome on FHIR routes), nothing is written, and the
 * same requests succeed once the fault is gone.
 */

/** Served by the gateway with some of its bindings replaced. */
async function gwWith(over: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  if (!worker.fetch) throw new Error("the worker has no fetch handler");
  const req = new Request(BASE + path, init);
  const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, ...over }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const tokenInit = (): RequestInit => ({
  method: "POST",
  headers: { ...FORM, authorization: bootstrapAuth(), "cf-connecting-ip": randomIp() },
  body: form({ grant_type: "client_credentials", scope: "phi:read" }),
});

async function countsOf(db: D1Database): Promise<Record<string, number>> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'")
    .all<{ name: string }>();
  const out: Record<string, number> = {};
  for (const { name } of results) out[name] = (await db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).first<{ n: number }>())?.n ?? -1;
  return out;
}

/** A problem+json 5xx that names no SQL, table, stack or the fault's marker. */
async function expectGenericProblem(res: Response, status: number, code: string): Promise<string> {
  const text = await res.text();
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  expect(JSON.parse(text)).toMatchObject({ status, code });
  expect(text).not.toMatch(/SQLITE|D1_|no such|SELECT|INSERT|auth_failures|clients|stack|at \w+ \(/i);
  expect(text).not.toContain(env.FAULT_DETAIL);
  return text;
}

/** Console lines written while `fn` runs (our JSON logs), to check what a fault logs. */
async function captureLogs<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const spies = (["log", "info", "warn", "error"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" "))),
  );
  try {
    return { result: await fn(), lines };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe("faults: the token service's D1 unavailable", () => {
  it("a database without its tables: POST /oauth/token answers 503 storage_unavailable, logged by class and code only; then 200", async () => {
    const before = await countsOf(env.DB);
    const { result: res, lines } = await captureLogs(() => gwWith({ DB: env.FAULT_DB }, "/oauth/token", tokenInit()));
    await expectGenericProblem(res, 503, "storage_unavailable");
    expect(res.headers.get("retry-after")).toBe("1");
    const rid = res.headers.get("x-request-id");
    expect(rid).toBeTruthy();
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "storage_unavailable");
    expect(logged).toMatchObject({ level: "error", request_id: rid, error_class: expect.any(String) as unknown, error_code: "SQLITE_ERROR" });
    // The log line holds no SQL, no table, no value.
    expect(JSON.stringify(logged)).not.toMatch(/SELECT|FROM|auth_failures|no such|ip:/i);

    const tables = await env.FAULT_DB.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'").first<{ n: number }>();
    expect(tables?.n).toBe(0);
    expect(await countsOf(env.DB)).toEqual(before);

    const ok = await gw("/oauth/token", tokenInit());
    expect(ok.status).toBe(200);
  });

  it("the clients table gone mid-test (drizzle's wrapped error): 503 without the query, nothing written; the same client gets a token after", async () => {
    const c = await createClient({ name: "fault-client", roles: ["clinician"] });
    await env.DB.prepare("ALTER TABLE clients RENAME TO clients_fault").run();
    let before: Record<string, number>;
    try {
      before = await countsOf(env.DB);
      const { result: res, lines } = await captureLogs(() =>
        gw("/oauth/token", {
          method: "POST",
          headers: { ...FORM, authorization: `Basic ${btoa(`${c.client_id}:${c.client_secret}`)}`, "cf-connecting-ip": randomIp() },
          body: form({ grant_type: "client_credentials" }),
        }),
      );
      const text = await expectGenericProblem(res, 503, "storage_unavailable");
      expect(text).not.toContain(c.client_id);
      const all = lines.join("\n");
      expect(all).toContain('"msg":"storage_unavailable"');
      expect(all).not.toMatch(/Failed query|select .* from|clients_fault/i);
      expect(all).not.toContain(c.client_secret);
      expect(await countsOf(env.DB)).toEqual(before);
    } finally {
      await env.DB.prepare("ALTER TABLE clients_fault RENAME TO clients").run();
    }
    expect(await clientToken(c)).toMatch(/^ey/);
  });
});

describe("faults: an internal worker failing behind the gateway", () => {
  it("an internal worker that throws: 502 bad_gateway with a generic body, its error nowhere, nothing written; then 2xx", async () => {
    const tok = await token("phi:read phi:write");
    const beforeAuth = await countsOf(env.DB);
    const beforePhi = await countsOf(env.PHI_DB);
    const init = (): RequestInit => ({
      method: "POST",
      headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" },
      body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Crashtest" }] }),
    });
    const { result: res, lines } = await captureLogs(() => gwWith({ PHI: env.FAULT_THROWS }, "/v1/phi/Patient", init()));
    const text = await expectGenericProblem(res, 502, "bad_gateway");
    expect(text).not.toContain("Crashtest");
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "upstream_unreachable");
    expect(logged).toMatchObject({ service: "PHI", request_id: res.headers.get("x-request-id") });
    expect(lines.join("\n")).not.toContain(env.FAULT_DETAIL);

    const read = await gwWith({ PHI: env.FAULT_THROWS }, "/v1/phi/Patient?family=Crashtest", { headers: { authorization: `Bearer ${tok}` } });
    await expectGenericProblem(read, 502, "bad_gateway");

    expect(await countsOf(env.DB)).toEqual(beforeAuth);
    expect(await countsOf(env.PHI_DB)).toEqual(beforePhi);

    // The real binding again: the same request goes through.
    const ok = await gw("/v1/phi/Patient", init());
    expect(ok.status).toBe(201);
  });

  it("an internal worker's own 500 passes through generic: no cause, no stack, no PHI (a sealed body moved to another row)", async () => {
    const tok = await token("phi:read phi:write");
    const mk = async (family: string) => {
      const r = await gw("/v1/phi/Patient", {
        method: "POST",
        headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" },
        body: JSON.stringify({ resourceType: "Patient", name: [{ family }], birthDate: "1971-03-04" }),
      });
      expect(r.status).toBe(201);
      return (await r.json<{ id: string }>()).id;
    };
    const a = await mk("Sourcerow");
    const b = await mk("Targetrow");
    const original = await env.PHI_DB.prepare("SELECT sealed FROM resource_versions WHERE id = ?").bind(b).first<{ sealed: string }>();
    await env.PHI_DB.prepare("UPDATE resource_versions SET sealed = (SELECT sealed FROM resource_versions WHERE id = ?) WHERE id = ?").bind(a, b).run();
    try {
      const res = await gw(`/v1/phi/Patient/${b}`, { headers: { authorization: `Bearer ${tok}` } });
      const text = await res.text();
      expect(res.status).toBe(500);
      expect(res.headers.get("content-type")).toContain("application/fhir+json");
      expect(JSON.parse(text)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ severity: "fatal", details: { coding: [{ code: "internal_error" }] } }] });
      expect(text).not.toMatch(/Sourcerow|Targetrow|1971|decrypt|OperationError|stack|at \w+ \(/i);
    } finally {
      await env.PHI_DB.prepare("UPDATE resource_versions SET sealed = ? WHERE id = ?").bind(original?.sealed ?? null, b).run();
    }
    const ok = await gw(`/v1/phi/Patient/${b}`, { headers: { authorization: `Bearer ${tok}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ name: [{ family: "Targetrow" }] });
  });

  it("an internal worker's D1 failing: its 503 (OperationOutcome, Retry-After) reaches the client through the gateway, nothing written", async () => {
    const tok = await token("phi:read phi:write");
    const created = await gw("/v1/phi/Patient", {
      method: "POST",
      headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" },
      body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Gatewayfault" }] }),
    });
    const { id } = await created.json<{ id: string }>();
    await env.PHI_DB.prepare("ALTER TABLE resource_versions RENAME TO resource_versions_fault").run();
    let auditBefore: number;
    try {
      auditBefore = (await countsOf(env.PHI_DB)).phi_audit ?? 0;
      const res = await gw(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${tok}` } });
      const text = await res.text();
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(JSON.parse(text)).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "transient", details: { coding: [{ code: "storage_unavailable" }] } }] });
      expect(text).not.toMatch(/Gatewayfault|SQLITE|no such|resource_versions/);
      // The failed access is on record (one row), and nothing else was written.
      expect((await countsOf(env.PHI_DB)).phi_audit).toBe(auditBefore + 1);
    } finally {
      await env.PHI_DB.prepare("ALTER TABLE resource_versions_fault RENAME TO resource_versions").run();
    }
    expect(await verifyChain(env.PHI_DB, "phi_audit")).toMatchObject({ ok: true });
    const ok = await gw(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${tok}` } });
    expect(ok.status).toBe(200);
  });
});

describe("faults: which errors are the store's", () => {
  // (bind() throws synchronously: run it inside the promise)
  const failure = async (p: () => Promise<unknown>): Promise<unknown> =>
    Promise.resolve()
      .then(p)
      .then(
        () => expect.fail("expected a D1 error"),
        (e: unknown) => e,
      );

  it("classifies real D1 errors: a missing table and a trigger's RAISE are; a unique clash, a bad bind value and non-D1 errors are not", async () => {
    const missing = await failure(() => env.FAULT_DB.prepare("SELECT 1 FROM clients").first());
    expect(isStorageError(missing)).toBe(true);
    expect(storageErrorCode(missing)).toBe("SQLITE_ERROR");
    // Wrapped (as drizzle wraps it): the cause decides.
    expect(isStorageError(new Error("Failed query: select 1\nparams: ", { cause: missing }))).toBe(true);

    await env.FAULT_DB.prepare("CREATE TABLE IF NOT EXISTS fault_guarded (x INTEGER PRIMARY KEY)").run();
    await env.FAULT_DB.prepare("CREATE TRIGGER IF NOT EXISTS fault_guard BEFORE INSERT ON fault_guarded BEGIN SELECT RAISE(ABORT, 'read-only'); END").run();
    try {
      const guard = await failure(() => env.FAULT_DB.prepare("INSERT INTO fault_guarded VALUES (1)").run());
      expect(isStorageError(guard)).toBe(true);
      expect(storageErrorCode(guard)).toBe("SQLITE_CONSTRAINT_TRIGGER");
      await env.FAULT_DB.prepare("DROP TRIGGER fault_guard").run();
      await env.FAULT_DB.prepare("INSERT INTO fault_guarded VALUES (2)").run();
      const unique = await failure(() => env.FAULT_DB.prepare("INSERT INTO fault_guarded VALUES (2)").run());
      expect(isStorageError(unique)).toBe(false);
    } finally {
      await env.FAULT_DB.prepare("DROP TABLE fault_guarded").run();
    }
    const badBind = await failure(() => env.FAULT_DB.prepare("SELECT ?").bind(undefined as unknown as null).first());
    expect(isStorageError(badBind)).toBe(false);

    expect(isStorageError(new Error("D1 DB is overloaded. Requests queued for too long."))).toBe(true);
    expect(storageErrorCode(new Error("D1 DB is overloaded."))).toBe("D1");
    expect(isStorageError(new TypeError("Cannot read properties of undefined"))).toBe(false);
    expect(isStorageError("D1_ERROR as a string")).toBe(false);
    expect(isStorageError(undefined)).toBe(false);
  });
});

describe("faults: documented", () => {
  it("the OpenAPI document declares the fault answers: 503 on the token endpoint, 502 and the gateway's fail-closed 503 on every forwarded route, 503 on phi and payments", async () => {
    const doc = await (await gw("/openapi.json")).json<{ paths: Record<string, Record<string, { security: unknown[]; responses: Record<string, { description: string }> }>> }>();
    expect(doc.paths["/oauth/token"]?.post?.responses["503"]?.description).toContain("storage_unavailable");
    const forwarded = Object.entries(doc.paths).filter(([p]) => p.startsWith("/v1/"));
    expect(forwarded.length).toBeGreaterThan(10);
    for (const [p, item] of forwarded) {
      for (const [m, op] of Object.entries(item)) {
        expect(op.responses["502"], `${m} ${p}`).toBeDefined();
        // A public entry (the CapabilityStatement) checks no token, so the revocation view cannot refuse it.
        if (op.security.length > 0) expect(op.responses["503"]?.description, `${m} ${p}`).toContain("revocation_state_unavailable");
      }
    }
    expect(doc.paths["/v1/phi/Patient"]?.post?.responses["503"]?.description).toContain("storage_unavailable");
    expect(doc.paths["/v1/payments"]?.post?.responses["503"]?.description).toContain("storage_unavailable");
  });
});

describe("faults: the metrics collector refusing", () => {
  const collector = inject("refusingCollector");
  type Seen = { method: string; path: string; contentType: string; body: string };
  const seen = async (): Promise<Seen[]> => (await (await fetch(`${collector}/_state`)).json<{ received: Seen[] }>()).received;
  const metricsPosts = async () => (await seen()).filter((r) => r.path === "/v1/metrics");

  it("a refused batch is dropped after one attempt (the documented policy), never thrown, never resent", async () => {
    const sent = (await metricsPosts()).length;
    const target = { OTEL_EXPORTER_OTLP_ENDPOINT: collector, ENVIRONMENT: "test" };
    const policy = { intervalMs: 0, maxPoints: 1 };

    counter("fault_refused_first_total").add(3);
    const ctx = createExecutionContext();
    const { lines } = await captureLogs(async () => {
      expect(scheduleMetricsFlush(target, ctx, "auth", policy)).toBe(true);
      await waitOnExecutionContext(ctx); // resolves: the refusal is not an error of the request
    });
    expect(pointCount()).toBe(0);
    const posts = await metricsPosts();
    expect(posts.length).toBe(sent + 1);
    const first = posts.at(-1);
    expect(first).toMatchObject({ method: "POST", contentType: "application/json" });
    expect(first?.body).toContain("fault_refused_first_total");
    const warned = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "metrics_export_refused");
    expect(warned).toMatchObject({ level: "warn", status: 503 });

    // The next export carries only what was recorded since: the refused batch is gone.
    counter("fault_refused_second_total").add(1);
    const ctx2 = createExecutionContext();
    expect(scheduleMetricsFlush(target, ctx2, "auth", policy)).toBe(true);
    await waitOnExecutionContext(ctx2);
    const second = (await metricsPosts()).at(-1);
    expect(second?.body).toContain("fault_refused_second_total");
    expect(second?.body).not.toContain("fault_refused_first_total");
  });

  it("requests through the gateway answer as usual while the collector refuses every export", async () => {
    const tok = await token("phi:read");
    const before = (await seen()).length;
    const over = { OTEL_EXPORTER_OTLP_ENDPOINT: collector, OTEL_METRIC_EXPORT_INTERVAL: "100" } as Partial<Env>;
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 120)); // let an export fall due
      const res = await gwWith(over, "/v1/phi/Patient?family=Nobody", { headers: { authorization: `Bearer ${tok}` } });
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    // The collector was asked (and refused) at least once; the answers did not change.
    expect((await seen()).length).toBeGreaterThan(before);
  });
});
