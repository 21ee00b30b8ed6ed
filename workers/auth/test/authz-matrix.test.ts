import { beforeAll, describe, expect, it } from "vitest";
import { ROLE_SCOPES, ROLES, hasAllScopes } from "../../../shared/scopes";
import { fullPath, SERVICES } from "../src/gateway/route-table";
import type { RouteScope } from "../src/gateway/routes/types";
import { clientToken, createClient, gw, JSON_CT, randomIp, seedDevice, seedPayment, token, tokenRequest, basic } from "./helpers";

/**
 * The authorization matrix, generated from the gateway's route table and the role
 * definitions: every route x every role (plus no token, a client with no role, a
 * role-`device` client bound to no device, and a real device's own token), asserted
 * through the gateway. A deny is the gateway's 401/403 problem; an allow is an answer
 * from the worker behind it (whatever it thinks of the dummy ids and empty bodies),
 * never the gateway's refusal. Then the object-level rules: a device acts only as
 * itself, and payments are their tenant's one merchant's (visible to every `payment:read` client of the tenant).
 */

/** Codes only the gateway's bearer check produces. */
const GATEWAY_DENIALS = ["unauthenticated", "invalid_token", "insufficient_scope"];

/** A dummy id of the shape each worker accepts (so an allowed request reaches a lookup, not a validator). */
function dummyId(path: string, name: string): string {
  if (name === "vid") return "1";
  if (path.startsWith("/v1/phi/")) return "0b9d9c5e-7f1a-4c1e-9a53-1d7cf1f0a001";
  if (path.startsWith("/v1/payments/payment-methods/")) return "pm_authzMatrix0001";
  if (path.startsWith("/v1/payments/refunds/")) return "re_authzMatrix0001";
  if (path.startsWith("/v1/payments/")) return "pi_authzMatrix0001";
  if (path.startsWith("/v1/devices/")) return "dev_authzMatrix0001";
  return "x";
}

function concretePath(prefix: string, route: RouteScope): string {
  const path = fullPath(prefix, route.path);
  return path.replace(/:(\w+)/g, (_, name: string) => dummyId(path, name));
}

interface Principal {
  name: string;
  token?: string;
  scopes: readonly string[];
  deviceBound?: boolean;
}

const ROWS = SERVICES.flatMap((svc) => svc.routes.map((route) => ({ svc, route, path: concretePath(svc.prefix, route) })));

async function call(method: string, path: string, tok: string | undefined): Promise<Response> {
  const headers: Record<string, string> = { "cf-connecting-ip": randomIp(), "idempotency-key": crypto.randomUUID() };
  if (tok) headers.authorization = `Bearer ${tok}`;
  let body: string | undefined;
  if (method !== "GET" && method !== "DELETE") {
    // An empty object: never a valid write, so the matrix creates nothing.
    headers["content-type"] = path.startsWith("/v1/phi/") && !path.endsWith("/_search") ? "application/fhir+json" : path.endsWith("/_search") ? "application/x-www-form-urlencoded" : "application/json";
    body = path.endsWith("/_search") ? "_count=abc" : "{}";
  }
  return gw(path, { method, headers, ...(body !== undefined ? { body } : {}) });
}

/** The code of a problem or OperationOutcome body (phi answers in FHIR). */
async function codeOf(res: Response): Promise<string | undefined> {
  const type = res.headers.get("content-type") ?? "";
  if (!type.includes("json")) {
    await res.body?.cancel();
    return undefined;
  }
  const body = await res.json<{ code?: string; resourceType?: string; issue?: { details?: { coding?: { code?: string }[] }; code?: string }[] }>();
  if (body.resourceType === "OperationOutcome") return body.issue?.[0]?.details?.coding?.[0]?.code ?? `fhir:${body.issue?.[0]?.code ?? ""}`;
  return body.code;
}

describe("authorization matrix: every gateway route x every role", () => {
  const principals: Principal[] = [];
  let device: { id: string; token: string; client_id: string };

  beforeAll(async () => {
    for (const role of ROLES) {
      const c = await createClient({ name: `authz-${role}`, roles: [role] });
      // A token with every scope the role grants (the default when no scope is requested).
      principals.push({ name: `role ${role}`, token: await clientToken(c), scopes: ROLE_SCOPES[role] });
    }
    device = await seedDevice("authz");
    principals.push({ name: "device's own token", token: device.token, scopes: ROLE_SCOPES.device, deviceBound: true });
    // A client with no role holds only the scopes it was given one by one.
    const plain = await createClient({ name: "authz-norole", roles: [], scopes: ["device:read"] });
    principals.push({ name: "no role (explicit device:read)", token: await clientToken(plain), scopes: ["device:read"] });
    principals.push({ name: "no token", scopes: [] });
  });

  it("the route table and the OpenAPI document agree on every route's scopes", async () => {
    const doc = await (await gw("/openapi.json")).json<{ paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>> }>();
    for (const { svc, route } of ROWS) {
      const docPath = fullPath(svc.prefix, route.path).replace(/:(\w+)/g, "{$1}");
      const op = doc.paths[docPath]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${docPath} is documented`).toBeDefined();
      const scopes = (op?.security ?? []).flatMap((s) => Object.values(s).flat());
      expect([...scopes].sort(), `${route.method} ${docPath}`).toEqual([...route.scopes].sort());
    }
  });

  it("a client with neither role nor scope cannot exist, so no token is without both", async () => {
    const res = await gw("/admin/clients", {
      method: "POST",
      headers: { authorization: `Bearer ${await token("admin")}`, ...JSON_CT },
      body: JSON.stringify({ name: "authz-nothing", roles: [], scopes: [] }),
    });
    expect(res.status).toBe(400);
    expect((await res.json<{ code: string }>()).code).toBe("invalid_request");
    // And a token request for no scope from a client allowed some still names them all (RFC 6749 3.3).
    const plain = await createClient({ name: "authz-one-scope", roles: [], scopes: ["device:read"] });
    const tok = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(plain.client_id, plain.client_secret) });
    expect((await tok.json<{ scope: string }>()).scope).toBe("device:read");
  });

  it(`${ROWS.length} routes x every principal: allowed iff the principal holds every scope of the route`, async () => {
    const problems: string[] = [];
    let allowed = 0;
    let denied = 0;
    for (const p of principals) {
      // One principal's routes at a time, in parallel.
      await Promise.all(
        ROWS.map(async ({ route, path }) => {
          const res = await call(route.method, path, p.token);
          const code = await codeOf(res);
          const label = `${p.name}: ${route.method} ${path} -> ${res.status} ${code ?? ""}`;
          // Public routes (FHIR metadata) are answered for everyone, with or without a token.
          const expectAllow = route.public === true || (p.token !== undefined && hasAllScopes(p.scopes, route.scopes));
          if (!expectAllow) {
            denied++;
            const want = p.token === undefined ? [401, "unauthenticated"] : [403, "insufficient_scope"];
            if (res.status !== want[0] || code !== want[1]) problems.push(`expected deny ${want.join(" ")}: ${label}`);
            if (res.status === 403 && !(res.headers.get("www-authenticate") ?? "").includes('error="insufficient_scope"')) problems.push(`no WWW-Authenticate scope hint: ${label}`);
          } else {
            allowed++;
            // Through the gateway: whatever the worker answers, it is not the gateway's refusal.
            if (res.status === 401 || res.status >= 500 || GATEWAY_DENIALS.includes(code ?? "")) problems.push(`expected the worker's answer: ${label}`);
            // The one 403 a worker may give an allowed caller: a device acting as another device.
            if (res.status === 403 && code !== "device_mismatch") problems.push(`worker refused an allowed caller: ${label}`);
          }
        }),
      );
    }
    expect(problems).toEqual([]);
    expect(allowed).toBeGreaterThan(0);
    expect(denied).toBeGreaterThan(0);
    expect(allowed + denied).toBe(ROWS.length * principals.length);
  });

  it("the auth service's own admin routes: admin scope for clients and keys, audit:read for security events", async () => {
    const admin = principals.find((p) => p.name === "role admin");
    const auditor = principals.find((p) => p.name === "role auditor");
    const clinician = principals.find((p) => p.name === "role clinician");
    const cases: [string, string, Principal | undefined, number][] = [
      ["GET", "/admin/clients", admin, 200],
      ["GET", "/admin/keys", admin, 200],
      ["GET", "/admin/security-events", admin, 200],
      ["GET", "/admin/security-events", auditor, 200],
      ["GET", "/admin/clients", auditor, 403],
      ["GET", "/admin/keys", clinician, 403],
      ["GET", "/admin/security-events", clinician, 403],
      ["DELETE", "/admin/clients/cli_nothing", clinician, 403],
      ["DELETE", "/admin/clients/cli_nothing", admin, 404],
    ];
    for (const [method, path, p, status] of cases) {
      const res = await gw(path, { method, headers: { authorization: `Bearer ${p?.token ?? ""}` } });
      expect(res.status, `${p?.name}: ${method} ${path}`).toBe(status);
      await res.body?.cancel();
    }
  });
});

describe("object-level authorization", () => {
  const reading = (seq: number) => ({ seq, code: "8867-4", value: 72, unit: "/min", device_time: new Date().toISOString() });

  it("a device's token acts only as its own device: readings and sessions of another device are refused", async () => {
    const a = await seedDevice("a");
    const b = await seedDevice("b");
    const post = (tok: string, id: string) =>
      gw(`/v1/devices/${id}/readings`, { method: "POST", headers: { authorization: `Bearer ${tok}`, ...JSON_CT }, body: JSON.stringify({ readings: [reading(1)] }) });
    // Its own device: accepted (the positive control).
    const own = await post(a.token, a.id);
    expect(own.status).toBe(200);
    await own.body?.cancel();
    // Another device, an unknown device: the same refusal (the binding is checked before existence).
    for (const id of [b.id, "dev_doesNotExist000"]) {
      const res = await post(a.token, id);
      expect(res.status, id).toBe(403);
      expect((await res.json<{ code: string }>()).code).toBe("device_mismatch");
    }
    const session = await gw(`/v1/devices/${b.id}/session`, { headers: { authorization: `Bearer ${a.token}`, upgrade: "websocket" } });
    expect(session.status).toBe(403);
    expect(session.webSocket).toBeNull();
    expect((await session.json<{ code: string }>()).code).toBe("device_mismatch");
    // Nothing reached device b; device a has exactly its one reading.
    const reader = await token("device:read");
    const readB = await gw(`/v1/devices/${b.id}/readings`, { headers: { authorization: `Bearer ${reader}` } });
    expect((await readB.json<{ data: unknown[] }>()).data).toHaveLength(0);
    const readA = await gw(`/v1/devices/${a.id}/readings`, { headers: { authorization: `Bearer ${reader}` } });
    expect((await readA.json<{ data: unknown[] }>()).data).toHaveLength(1);
    // A device token reads nothing (device:connect only), not even its own device's record.
    const self = await gw(`/v1/devices/${a.id}`, { headers: { authorization: `Bearer ${a.token}` } });
    expect(self.status).toBe(403);
    await self.body?.cancel();
  });

  it("a role-device client bound to no device may not act as any device", async () => {
    const unbound = await createClient({ name: "authz-unbound-device", roles: ["device"] });
    const tok = await clientToken(unbound);
    const d = await seedDevice("unbound");
    const res = await gw(`/v1/devices/${d.id}/readings`, { method: "POST", headers: { authorization: `Bearer ${tok}`, ...JSON_CT }, body: JSON.stringify({ readings: [reading(1)] }) });
    expect(res.status).toBe(403);
    expect((await res.json<{ code: string }>()).code).toBe("device_mismatch");
  });

  it("a decommissioned device's token is refused at the gateway", async () => {
    const d = await seedDevice("decom");
    const res = await gw(`/v1/devices/${d.id}/decommission`, {
      method: "POST",
      headers: { authorization: `Bearer ${await token("device:write")}`, ...JSON_CT },
      body: JSON.stringify({ reason: "authz matrix" }),
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const after = await gw(`/v1/devices/${d.id}/readings`, { method: "POST", headers: { authorization: `Bearer ${d.token}`, ...JSON_CT }, body: JSON.stringify({ readings: [reading(1)] }) });
    expect(after.status).toBe(401);
    expect((await after.json<{ code: string }>()).code).toBe("invalid_token");
  });

  it("payments are their tenant's merchant's: visible to every payment:read client of the tenant, not to other tenants; idempotency keys are per client", async () => {
    const maker = await createClient({ name: "authz-billing-1", roles: ["billing"] });
    const other = await createClient({ name: "authz-billing-2", roles: ["billing"] });
    const auditor = await createClient({ name: "authz-auditor", roles: ["auditor"] });
    const makerTok = await clientToken(maker);
    const otherTok = await clientToken(other);
    const key = crypto.randomUUID();
    const body = JSON.stringify({ amount: 500, currency: "usd", capture: "manual", card: { number: "4242424242424242", exp_month: 12, exp_year: new Date().getUTCFullYear() + 3, cvc: "123" } });
    const create = (tok: string) => gw("/v1/payments", { method: "POST", headers: { authorization: `Bearer ${tok}`, ...JSON_CT, "idempotency-key": key }, body });
    const first = await create(makerTok);
    expect(first.status).toBe(201);
    const paid = await first.json<{ id: string }>();
    // Documented (workers/payments/README.md): one merchant per tenant, so another billing client and an auditor of it read it.
    for (const tok of [otherTok, await clientToken(auditor)]) {
      const res = await gw(`/v1/payments/${paid.id}`, { headers: { authorization: `Bearer ${tok}` } });
      expect(res.status).toBe(200);
      expect((await res.json<{ id: string }>()).id).toBe(paid.id);
    }
    // The same idempotency key from another client is that client's own operation, never a replay of the first.
    const second = await create(otherTok);
    expect(second.status).toBe(201);
    expect((await second.json<{ id: string }>()).id).not.toBe(paid.id);
    // The bootstrap client's payment is a platform client's (tenant ten_platform): not the default tenant's.
    const seeded = await seedPayment();
    const res = await gw(`/v1/payments/${seeded.id}`, { headers: { authorization: `Bearer ${otherTok}` } });
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });
});
