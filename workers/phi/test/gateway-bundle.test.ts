import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { expectValidFhir, gatewayToken, GW, patient } from "./helpers";
import { observation, tableCounts, txn, urn, type BundleOut } from "./bundle-helpers";

const token = gatewayToken;

function post(tok: string, body: unknown): Promise<Response> {
  return env.GATEWAY.fetch(`${GW}/v1/phi`, {
    method: "POST",
    headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json" },
    body: JSON.stringify(body),
  });
}

describe("Bundles through the auth gateway (real tokens, real service binding)", () => {
  it("a transaction commits through the gateway, with absolute locations on the gateway's origin", async () => {
    const p = urn();
    const res = await post(
      await token("phi:read phi:write"),
      txn("transaction", [
        { fullUrl: p, resource: patient("Gwtxn"), request: { method: "POST", url: "Patient" } },
        { resource: observation(p), request: { method: "POST", url: "Observation" } },
      ]),
    );
    expect(res.status).toBe(200);
    const out = await res.json<BundleOut>();
    await expectValidFhir(out);
    expect(out.entry?.[0]?.response.location).toMatch(new RegExp(`^${GW}/v1/phi/Patient/[0-9a-f-]{36}/_history/1$`));
    expect(out.entry?.[1]?.resource?.subject).toEqual({ reference: `Patient/${String(out.entry?.[0]?.resource?.id)}` });
  });

  it("the gateway requires every scope the entries need: a read-only token cannot create, nothing changes", async () => {
    const before = await tableCounts();
    const reader = await token("phi:read");
    const res = await post(reader, txn("transaction", [{ resource: patient("Gwreadonly"), request: { method: "POST", url: "Patient" } }]));
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="health-platform", error="insufficient_scope", scope="phi:write"');
    // Refused at the gateway: phi saw nothing, wrote nothing, recorded nothing.
    expect(await tableCounts()).toEqual(before);
    // A write-only token may post creates (no phi:read needed), but not a read.
    const writer = await token("phi:write");
    const created = await post(writer, txn("transaction", [{ resource: patient("Gwwriteonly"), request: { method: "POST", url: "Patient" } }]));
    expect(created.status).toBe(200);
    await created.body?.cancel();
    const read = await post(writer, txn("transaction", [{ request: { method: "GET", url: `Patient/${crypto.randomUUID()}` } }]));
    expect(read.status).toBe(403);
    await read.body?.cancel();
  });

  it("a body that is not a Bundle needs phi:read at the gateway and is a 400 OperationOutcome from phi", async () => {
    const noPhi = await token("audit:read");
    const denied = await env.GATEWAY.fetch(`${GW}/v1/phi`, { method: "POST", headers: { authorization: `Bearer ${noPhi}`, "content-type": "application/fhir+json" }, body: "{oops" });
    expect(denied.status).toBe(403);
    await denied.body?.cancel();
    const reader = { authorization: `Bearer ${await token("phi:read")}`, "content-type": "application/fhir+json" };
    const res = await env.GATEWAY.fetch(`${GW}/v1/phi`, { method: "POST", headers: reader, body: "{oops" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ resourceType: "OperationOutcome" });
    // The gateway reads a Bundle within its body limit (1 MiB) only.
    const huge = JSON.stringify(txn("transaction", [{ resource: patient("Gwhuge", "x".repeat(1100 * 1024)), request: { method: "POST", url: "Patient" } }]));
    const tooBig = await env.GATEWAY.fetch(`${GW}/v1/phi`, { method: "POST", headers: reader, body: huge });
    expect(tooBig.status).toBe(413);
    await tooBig.body?.cancel();
  });
});
