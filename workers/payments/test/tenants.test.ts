import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { PAYMENTS_ROUTES } from "../../auth/src/gateway/routes/payments";
import { ALL_SCOPES, call, card, json, newKey, sealAll, type Caller, type PaymentBody } from "./helpers";

/**
 * The tenant matrix (issue 18): for every route of the gateway's table, tenant B's client
 * aimed at tenant A's resources gets exactly what an id that does not exist gets (404, same
 * body but for the request id), or a list without A's rows; and A's rows are the same after.
 */
const A: Caller = { sub: "cli_alpha", tenantId: "ten_alpha", scopes: [...ALL_SCOPES, "payment:approve"] };
const A_CHECKER: Caller = { ...A, sub: "cli_alpha_checker" };
const B: Caller = { sub: "cli_beta", tenantId: "ten_beta", scopes: [...ALL_SCOPES, "payment:approve"] };
const MISSING = { pm: "pm_doesNotExist0000000", pi: "pi_doesNotExist0000000", re: "re_doesNotExist0000000" };

/** Every table that holds tenant rows. */
const TENANT_TABLES = ["payment_methods", "payments", "payment_transitions", "refunds", "ledger_lines", "idempotency_keys", "audit_events", "processor_operations"];

interface Fixture {
  pm: string;
  manual: PaymentBody;
  paid: PaymentBody;
  pending: string;
  small: string;
  /** The Idempotency-Key and body of A's card tokenization and of A's payment creation. */
  pmKey: string;
  payKey: string;
  payBody: Record<string, unknown>;
}

async function ok<T>(res: Response, status: number): Promise<T> {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${await res.text()}`);
  return json<T>(res);
}

async function setup(): Promise<Fixture> {
  const pmKey = newKey();
  const pm = await ok<{ id: string }>(await call("POST", "/v1/payments/payment-methods", { body: card(), key: pmKey, caller: A }), 201);
  const payKey = newKey();
  const payBody = { amount: 1500, currency: "usd", payment_method: pm.id, capture: "manual" };
  const manual = await ok<PaymentBody>(await call("POST", "/v1/payments", { body: payBody, key: payKey, caller: A }), 201);
  const paid = await ok<PaymentBody>(await call("POST", "/v1/payments", { body: { amount: 90_000, currency: "usd", card: card(), capture: "automatic" }, caller: A }), 201);
  // The small refund first: once the payment's refunds pass the threshold, every further one waits for approval.
  const small = await ok<{ id: string; status: string }>(await call("POST", `/v1/payments/${paid.id}/refunds`, { body: { amount: 100, reason: "small" }, caller: A }), 201);
  expect(small.status).toBe("succeeded");
  const pending = await ok<{ id: string; status: string }>(await call("POST", `/v1/payments/${paid.id}/refunds`, { body: { amount: 60_000, reason: "held" }, caller: A }), 201);
  expect(pending.status).toBe("pending_approval");
  return { pm: pm.id, manual, paid, pending: pending.id, small: small.id, pmKey, payKey, payBody };
}

/** Every row of a tenant, table by table (audit rows without their seal columns: the sealer sets those on its own). */
async function tenantRows(tenantId: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of TENANT_TABLES) {
    const { results } = await env.DB.prepare(`SELECT * FROM ${table} WHERE tenant_id = ? ORDER BY rowid`).bind(tenantId).all<Record<string, unknown>>();
    out[table] = table === "audit_events" ? results.map(({ prev_hash: _p, hash: _h, sealed_at: _s, ...data }) => data) : results;
  }
  return out;
}

/** A problem body without what differs per request. */
async function problemOf(res: Response): Promise<Record<string, unknown>> {
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const { request_id: _r, ...rest } = await res.json<Record<string, unknown>>();
  return rest;
}

/** B's answer for A's id is the answer for an id that does not exist, to the byte but the request id. */
async function sameAsMissing(method: string, path: (id: string) => string, aId: string, missing: string, body?: (id: string) => unknown): Promise<void> {
  const theirs = await call(method, path(aId), { body: body?.(aId), caller: B });
  const none = await call(method, path(missing), { body: body?.(missing), caller: B });
  expect(theirs.status, `${method} ${path(aId)}`).toBe(404);
  expect(none.status).toBe(404);
  expect(await problemOf(theirs)).toEqual(await problemOf(none));
}

type Case = (f: Fixture) => Promise<void>;

/** One case per route of the gateway's table (`METHOD path` as the table writes it). */
const CASES: Record<string, Case> = {
  "POST /payment-methods": async (f) => {
    // A's Idempotency-Key and body in tenant B: a request of B's own, never A's stored answer.
    const res = await call("POST", "/v1/payments/payment-methods", { body: card(), key: f.pmKey, caller: B });
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBeNull();
    expect((await json<{ id: string }>(res)).id).not.toBe(f.pm);
  },
  "GET /payment-methods/:id": (f) => sameAsMissing("GET", (id) => `/v1/payments/payment-methods/${id}`, f.pm, MISSING.pm),
  "POST /": async (f) => {
    // A's token cannot be charged from B: the same 404 as a token that does not exist.
    await sameAsMissing("POST", () => "/v1/payments", f.pm, MISSING.pm, (pm) => ({ ...f.payBody, payment_method: pm }));
    // A's key and body in B: not a replay of A's payment.
    const res = await call("POST", "/v1/payments", { body: f.payBody, key: f.payKey, caller: B });
    expect(res.status).toBe(404);
    expect(res.headers.get("idempotent-replayed")).toBeNull();
  },
  "GET /": async (f) => {
    const page = await ok<{ data: { id: string }[] }>(await call("GET", "/v1/payments?limit=100", { caller: B }), 200);
    expect(page.data.map((p) => p.id)).not.toContain(f.manual.id);
    expect(page.data).toEqual([]);
    for (const status of ["requires_capture", "partially_refunded"]) {
      expect((await ok<{ data: unknown[] }>(await call("GET", `/v1/payments?status=${status}`, { caller: B }), 200)).data).toEqual([]);
    }
  },
  "GET /ledger/balance": async () => {
    const bal = await ok<{ currencies: unknown[]; balanced: boolean }>(await call("GET", "/v1/payments/ledger/balance", { caller: B }), 200);
    expect(bal).toMatchObject({ currencies: [], balanced: true });
  },
  "GET /ledger/daily": async () => {
    expect((await ok<{ data: unknown[] }>(await call("GET", "/v1/payments/ledger/daily", { caller: B }), 200)).data).toEqual([]);
  },
  "GET /audit": async (f) => {
    const all = await ok<{ data: { tenant_id: string; resource_id: string | null; actor_sub: string }[] }>(await call("GET", "/v1/payments/audit?limit=200", { caller: B }), 200);
    expect(all.data.every((r) => r.tenant_id === "ten_beta" && r.actor_sub === "cli_beta")).toBe(true);
    // Filtered by A's payment: B's own refused attempt only, none of A's records (A has some).
    expect((await call("GET", `/v1/payments/${f.manual.id}`, { caller: B })).status).toBe(404);
    const mine = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE tenant_id = 'ten_alpha' AND resource_id = ?").bind(f.manual.id).first<number>("n");
    expect(mine).toBeGreaterThan(0);
    const about = await ok<{ data: { tenant_id: string; outcome: string }[] }>(await call("GET", `/v1/payments/audit?resource_id=${f.manual.id}`, { caller: B }), 200);
    expect(about.data.length).toBeGreaterThan(0);
    expect(about.data.every((r) => r.tenant_id === "ten_beta" && r.outcome === "refused")).toBe(true);
  },
  "GET /audit/verify": async () => {
    // One chain per service: verify proves it whole and answers hashes, seqs and counts, never a record.
    await sealAll();
    const v = await ok<Record<string, unknown>>(await call("GET", "/v1/payments/audit/verify", { caller: B }), 200);
    expect(v).toMatchObject({ ok: true, complete: true });
    expect(Object.keys(v).sort()).toEqual(["checkpoint", "complete", "from", "head", "next_after", "ok", "pending", "records", "sealed", "to"]);
  },
  "GET /refunds/:id": (f) => sameAsMissing("GET", (id) => `/v1/payments/refunds/${id}`, f.small, MISSING.re),
  "POST /refunds/:id/approve": (f) => sameAsMissing("POST", (id) => `/v1/payments/refunds/${id}/approve`, f.pending, MISSING.re, () => ({})),
  "GET /:id": (f) => sameAsMissing("GET", (id) => `/v1/payments/${id}`, f.manual.id, MISSING.pi),
  "POST /:id/capture": (f) => sameAsMissing("POST", (id) => `/v1/payments/${id}/capture`, f.manual.id, MISSING.pi, () => ({})),
  "POST /:id/void": (f) => sameAsMissing("POST", (id) => `/v1/payments/${id}/void`, f.manual.id, MISSING.pi, () => ({ reason: "x" })),
  "POST /:id/refunds": (f) => sameAsMissing("POST", (id) => `/v1/payments/${id}/refunds`, f.paid.id, MISSING.pi, () => ({ amount: 100, reason: "x" })),
};

describe("tenant matrix: tenant B against tenant A's payments", () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await setup();
  });

  it("has a case for every route of the gateway's table (a new route without one fails here)", () => {
    expect(Object.keys(CASES).sort()).toEqual(PAYMENTS_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it("stamps every row A's requests wrote with A's tenant", async () => {
    const rows = await tenantRows("ten_alpha");
    for (const table of TENANT_TABLES) expect(rows[table]?.length, table).toBeGreaterThan(0);
    expect((await tenantRows("ten_beta")).payments).toEqual([]);
  });

  it.each(PAYMENTS_ROUTES.map((r) => `${r.method} ${r.path}`))("%s: B gets A's ids as missing, and A's rows stay as they were", async (key) => {
    const run = CASES[key];
    if (!run) throw new Error(`no tenant case for ${key}`);
    const before = await tenantRows("ten_alpha");
    await run(f);
    expect(await tenantRows("ten_alpha")).toEqual(before);
  });

  it("leaves A able to use all of it afterwards", async () => {
    expect((await ok<PaymentBody>(await call("GET", `/v1/payments/${f.manual.id}`, { caller: A }), 200)).status).toBe("requires_capture");
    expect((await ok<{ status: string }>(await call("POST", `/v1/payments/refunds/${f.pending}/approve`, { body: {}, caller: A_CHECKER }), 200)).status).toBe("succeeded");
    const replay = await call("POST", "/v1/payments", { body: f.payBody, key: f.payKey, caller: A });
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await json<PaymentBody>(replay)).id).toBe(f.manual.id);
    const bal = await ok<{ currencies: { currency: string; accounts: Record<string, number> }[] }>(await call("GET", "/v1/payments/ledger/balance", { caller: A }), 200);
    expect(bal.currencies[0]?.accounts.refunds).toBe(60_100);
    const trail = await ok<{ data: { tenant_id: string }[] }>(await call("GET", "/v1/payments/audit?limit=200", { caller: A }), 200);
    expect(trail.data.every((r) => r.tenant_id === "ten_alpha")).toBe(true);
  });

  it("the platform tenant owns no payments: empty lists and 404s", async () => {
    const platform: Caller = { sub: "cli_platform", tenantId: "ten_platform", scopes: ALL_SCOPES };
    expect((await ok<{ data: unknown[] }>(await call("GET", "/v1/payments", { caller: platform }), 200)).data).toEqual([]);
    expect((await call("GET", `/v1/payments/${f.manual.id}`, { caller: platform })).status).toBe(404);
    expect((await ok<{ data: { tenant_id: string }[] }>(await call("GET", "/v1/payments/audit", { caller: platform }), 200)).data.every((r) => r.tenant_id === "ten_platform")).toBe(true);
  });
});
