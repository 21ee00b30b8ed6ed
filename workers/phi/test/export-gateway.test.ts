import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, gatewayToken, GW, tokenFor } from "./helpers";
import { seedPatient } from "./export-helpers";

/** Bulk export through the auth gateway: real tokens, the gateway's route table and scopes, its origin in every link. */

const bootstrap = gatewayToken;

function gw(url: string, tok: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${tok}`);
  return env.GATEWAY.fetch(url.startsWith("http") ? url : `${GW}/v1/phi${url}`, { ...init, headers });
}

/** A registered client of the default tenant (where the seeded patients are), as an administrator creates one. */
async function registeredClient(name: string, roles: string[]): Promise<{ id: string; token: (scope: string) => Promise<string> }> {
  const res = await gw(`${GW}/admin/clients`, await bootstrap("admin"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, roles }),
  });
  expect(res.status).toBe(201);
  const c = await res.json<{ client_id: string; client_secret: string }>();
  return { id: c.client_id, token: (scope) => tokenFor(c.client_id, c.client_secret, scope) };
}

async function otherClientToken(): Promise<string> {
  return (await registeredClient("export-other", ["clinician"])).token("phi:read");
}

describe("$export through the gateway", () => {
  it("kick-off, poll and download with absolute gateway URLs; another client and a token without phi:read are refused", async () => {
    const seeded = await seedPatient("GatewayExport", 2);
    const client = await registeredClient("export-reader", ["clinician", "auditor"]);
    const reader = await client.token("phi:read");
    const kick = await gw("/$export?_type=Patient,Observation", reader, { headers: { prefer: "respond-async", accept: "application/fhir+json" } });
    expect(kick.status).toBe(202);
    const status = kick.headers.get("content-location") ?? "";
    expect(status).toMatch(/^https:\/\/gateway\.test\/v1\/phi\/\$export-status\/[0-9a-f-]{36}$/);

    let res = await gw(status, reader);
    for (let i = 0; i < 500 && res.status === 202; i++) {
      await new Promise((r) => setTimeout(r, 20));
      res = await gw(status, reader);
    }
    expect(res.status).toBe(200);
    const manifest = await res.json<{ request: string; requiresAccessToken: boolean; output: { type: string; url: string; count: number }[] }>();
    expect(manifest.request).toBe("https://gateway.test/v1/phi/$export?_type=Patient,Observation");
    expect(manifest.requiresAccessToken).toBe(true);
    expect(manifest.output.map((o) => [o.type, o.count])).toEqual([
      ["Patient", 1],
      ["Observation", 2],
    ]);
    const patientFile = manifest.output[0]?.url ?? "";
    expect(patientFile).toMatch(/^https:\/\/gateway\.test\/v1\/phi\/\$export-file\//);
    const file = await gw(patientFile, reader);
    expect(file.status).toBe(200);
    expect(file.headers.get("cache-control")).toContain("no-store");
    const lines = new TextDecoder().decode(await file.arrayBuffer()).trimEnd().split("\n");
    expect(lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual([seeded.id]);

    // requiresAccessToken: no token, a token without the scope (gateway: 401/403), another client (phi: 404).
    expect((await env.GATEWAY.fetch(patientFile)).status).toBe(401);
    const auditor = await client.token("audit:read");
    expect((await gw(status, auditor)).status).toBe(403);
    expect((await gw(patientFile, auditor)).status).toBe(403);
    const other = await otherClientToken();
    expect((await gw(status, other)).status).toBe(404);
    expect((await gw(patientFile, other)).status).toBe(404);
    expect((await gw(status, other, { method: "DELETE" })).status).toBe(404);

    // The disclosure is recorded under the client that asked.
    const job = status.slice(status.lastIndexOf("/") + 1);
    const disclosed = (await auditRows()).filter((r) => r.action === "export-disclose" && r.resource_id === job);
    expect(disclosed.length).toBeGreaterThan(0);
    expect(disclosed.every((r) => r.actor_sub === client.id)).toBe(true);
    expect(disclosed.flatMap((r) => (r.patient_ids ? r.patient_ids.split(",") : []))).toEqual([seeded.id]);

    expect((await gw(status, reader, { method: "DELETE" })).status).toBe(202);
    expect((await gw(patientFile, reader)).status).toBe(404);
  });
});
