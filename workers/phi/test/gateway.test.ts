import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, gatewayToken, GW, patient, sealAll } from "./helpers";

const token = gatewayToken;

function gw(path: string, tok: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${tok}`);
  return env.GATEWAY.fetch(`${GW}/v1/phi${path}`, { ...init, headers });
}

describe("through the auth gateway (real tokens, real service binding)", () => {
  it("creates, reads and audits with the gateway's principal; a forged principal header is stripped", async () => {
    const writer = await token("phi:read phi:write");
    const created = await gw("/Patient", writer, {
      method: "POST",
      headers: { "content-type": "application/fhir+json", "x-purpose-of-use": "TREAT", "x-gateway-principal": "forged.value" },
      body: JSON.stringify(patient("Gatewayed")),
    });
    expect(created.status).toBe(201);
    const { id } = await created.json<{ id: string }>();
    const read = await gw(`/Patient/${id}`, writer);
    expect(read.status).toBe(200);
    expect(read.headers.get("etag")).toBe('W/"1"');

    const rows = (await auditRows()).filter((r) => r.patient_ids === id);
    expect(rows.map((r) => [r.action, r.outcome])).toEqual([
      ["create", "success"],
      ["read", "success"],
    ]);
    expect(rows[0]?.actor_sub).toBe(env.TEST_BOOTSTRAP_CLIENT_ID);
    expect(rows[0]?.request_id).toBe(created.headers.get("x-request-id"));

    // The gateway refuses before phi sees the request: no phi audit record for it.
    const before = (await auditRows()).length;
    const reader = await token("audit:read");
    expect((await gw(`/Patient/${id}`, reader)).status).toBe(403);
    expect((await gw(`/Patient/${id}`, "not-a-token")).status).toBe(401);
    expect((await auditRows()).length).toBe(before);
    await sealAll();
    const verify = await gw("/audit/verify", reader);
    expect(await verify.json()).toMatchObject({ ok: true });
    // The segment's range reaches phi through the gateway (the verify just made is sealed too: record 2 is not the head).
    await sealAll();
    expect(await (await gw("/audit/verify?after=1&limit=1", reader)).json()).toMatchObject({ ok: true, records: 1, from: 2, to: 2, next_after: 2, complete: false });
  });
});

describe("contracts", () => {
  it("serves exactly the routes of the gateway's table for phi, and documents them in OpenAPI", async () => {
    const { app } = await import("../src/index");
    const { PHI_ROUTES } = await import("../../auth/src/gateway/routes/phi");
    const served = new Set(
      app.routes
        .filter((r) => (r.path === "/v1/phi" || r.path.startsWith("/v1/phi/")) && r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace("/v1/phi", "") || "/"}`),
    );
    const table = new Set(PHI_ROUTES.map((r) => `${r.method} ${r.path}`));
    expect([...served].sort()).toEqual([...table].sort());

    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "phi", version: "1" } });
    const paths = Object.keys(doc.paths ?? {});
    expect(paths).toEqual(
      expect.arrayContaining(["/v1/phi", "/v1/phi/Patient", "/v1/phi/Patient/{id}", "/v1/phi/Patient/{id}/$access-log", "/v1/phi/audit/verify", "/v1/phi/$export", "/v1/phi/$export-status/{job}", "/v1/phi/$export-file/{job}/{file}"]),
    );
    expect(paths).toHaveLength(17);
  });
});
