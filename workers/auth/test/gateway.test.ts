import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { PRINCIPAL_HEADER } from "../../../shared/principal";
import { SERVICES, fullPath } from "../src/gateway/route-table";
import { BASE, bootstrapAuth, FORM, gw, ISSUER, token } from "./helpers";

describe("gateway forwarding", () => {
  it("reaches every service through its binding with a verified principal", async () => {
    for (const svc of SERVICES) {
      const route = svc.routes.find((r) => r.method === "GET" && !r.websocket);
      if (!route) continue;
      const path = fullPath(svc.prefix, route.path.replace(/:(\w+)/g, "probe-$1"));
      const tok = await token(route.scopes.join(" "));
      const res = await gw(path, { headers: { authorization: `Bearer ${tok}`, "x-request-id": `probe-${svc.binding}` } });
      // The internal worker answered (it refuses anything without a valid principal with 401).
      expect(res.status, path).not.toBe(401);
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers.get("x-request-id")).toBe(`probe-${svc.binding}`);
    }
  });

  it("the FHIR base answers with a trailing slash too, forwarded as the table names it; other roots and paths do not", async () => {
    const tok = await token("phi:read phi:write");
    const batch = JSON.stringify({ resourceType: "Bundle", type: "batch", entry: [] });
    const post = (path: string) => gw(path, { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" }, body: batch });
    const plain = await post("/v1/phi");
    const slashed = await post("/v1/phi/");
    expect(plain.status).toBe(200);
    // phi serves only the table's spelling: a 200 here means the gateway forwarded that one.
    expect(slashed.status).toBe(200);
    expect((await slashed.json<{ type: string }>()).type).toBe("batch-response");
    // Elsewhere a trailing slash is no alias: `/v1/payments/.` must stay a malformed id (404), never the list.
    for (const svc of SERVICES.filter((x) => x.binding !== "PHI")) {
      const root = svc.routes.find((r) => r.path === "/" && r.method === "GET");
      if (!root) continue;
      const auth = { authorization: `Bearer ${await token(root.scopes.join(" "))}` };
      expect((await gw(svc.prefix, { headers: auth })).status, svc.prefix).toBe(200);
      expect((await gw(`${svc.prefix}/`, { headers: auth })).status, `${svc.prefix}/`).toBe(404);
    }
    expect((await gw("/v1/phi/Patient/", { headers: { authorization: `Bearer ${tok}` } })).status).toBe(404);
  });

  it("strips a principal header sent by a client and records the attempt", async () => {
    const forged = "eyJzdWIiOiJyb290In0.AAAA";
    // Without a token the gateway refuses before forwarding anything.
    expect((await gw("/v1/phi/Patient/x", { headers: { [PRINCIPAL_HEADER]: forged } })).status).toBe(401);
    const tok = await token("phi:read");
    const res = await gw("/v1/phi/Patient/x", { headers: { authorization: `Bearer ${tok}`, [PRINCIPAL_HEADER]: forged } });
    // Had the forged header reached phi, phi would have answered 401 (bad signature).
    expect(res.status).not.toBe(401);
    const ev = await env.DB.prepare("SELECT COUNT(*) AS n FROM security_events WHERE event_type = 'principal_header_spoofed'").first<{ n: number }>();
    expect(ev?.n).toBeGreaterThan(0);
  });

  it("forwards public FHIR discovery without a token or principal, naming the origin the client called", async () => {
    const res = await gw("/v1/phi/metadata", { headers: { "x-forwarded-host": "evil.example", "x-forwarded-proto": "http", [PRINCIPAL_HEADER]: "forged.value" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    const cap = await res.json<{ resourceType: string; implementation: { url: string } }>();
    expect(cap.resourceType).toBe("CapabilityStatement");
    // The client's forwarding headers are replaced by the gateway's own.
    expect(cap.implementation.url).toBe(`${BASE}/v1/phi`);
    // Only GET is public: anything else on the path is not forwarded.
    expect((await gw("/v1/phi/metadata", { method: "POST" })).status).toBe(405);
    const smart = await gw("/v1/phi/.well-known/smart-configuration");
    expect(smart.status).toBe(200);
    // The SMART URLs are the issuer's (the audience a private_key_jwt assertion must name), not the host called.
    expect(await smart.json()).toMatchObject({ token_endpoint: `${ISSUER}/oauth/token`, grant_types_supported: ["client_credentials"] });
  });

  it("an internal worker called directly, without the gateway, refuses with 401", async () => {
    for (const binding of [env.PHI, env.PAYMENTS, env.SYNTHETIC, env.DEVICES]) {
      const res = await binding.fetch("https://internal/v1/anything", { headers: { authorization: `Bearer ${await token("admin")}` } });
      expect(res.status).toBe(401);
    }
  });

  it("refuses a missing scope with 403 insufficient_scope and the scope it needs", async () => {
    const tok = await token("phi:read");
    const res = await gw("/v1/phi/Patient", { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" }, body: "{}" });
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="health-platform", error="insufficient_scope", scope="phi:write"');
    expect(await res.json()).toMatchObject({ code: "insufficient_scope", status: 403 });
    // Both scopes are needed to load synthetic patients into phi.
    const half = await token("synthetic:generate");
    const load = await gw("/v1/synthetic/load", { method: "POST", headers: { authorization: `Bearer ${half}`, "content-type": "application/json" }, body: "{}" });
    expect(load.status).toBe(403);
  });

  it("answers 401 with a bare challenge when there is no token (RFC 6750 3.1)", async () => {
    const res = await gw("/v1/payments");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="health-platform"');
    expect(res.headers.get("content-type")).toBe("application/problem+json");
  });
});

describe("edge behaviour of every response", () => {
  it("sets the security headers and no-store, and echoes the request id", async () => {
    for (const path of ["/health", "/v1/phi/Patient/x", "/nowhere", "/oauth/token"]) {
      const res = await gw(path, { headers: { "x-request-id": "req-abc_123" } });
      expect(res.headers.get("strict-transport-security"), path).toBe("max-age=63072000; includeSubDomains; preload");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("x-request-id")).toBe("req-abc_123");
    }
    // A request id that is not a plain token is replaced, never echoed.
    const res = await gw("/health", { headers: { "x-request-id": "<script>" } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers 404 for unknown routes and 405 with Allow for wrong methods, as problem+json", async () => {
    for (const path of ["/nowhere", "/v1/phi/Unknown", "/v1/unknown/x", "/v1/payments/a/b/c/d"]) {
      const res = await gw(path, { headers: { authorization: `Bearer ${await token("phi:read")}` } });
      expect(res.status, path).toBe(404);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
    }
    const get = await gw("/oauth/token");
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    const patch = await gw("/v1/phi/Patient/x", { method: "PATCH" });
    expect(patch.status).toBe(405);
    expect(patch.headers.get("allow")?.split(", ").sort()).toEqual(["DELETE", "GET", "HEAD", "PUT"]);
  });

  it("refuses bodies over the limit with 413 before reading them", async () => {
    const big = "x".repeat(1024 * 1024 + 10);
    const res = await gw("/oauth/token", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: big });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "payload_too_large", status: 413 });
    const fwd = await gw("/v1/phi/Patient", { method: "POST", headers: { authorization: `Bearer ${await token("phi:write")}`, "content-type": "application/fhir+json" }, body: big });
    expect(fwd.status).toBe(413);
  });

  it("answers GET / with name, version and environment, and readiness with every dependency", async () => {
    expect(await (await gw("/")).json()).toMatchObject({ name: "auth", environment: "test", version: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown });
    expect(await (await gw("/readiness")).json()).toEqual({
      status: "ready",
      checks: { db: "ok", phi: "ok", payments: "ok", synthetic: "ok", devices: "ok" },
    });
  });
});
