import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SEARCH_PARAMS } from "../src/fhir/search-params";
import { call, expectValidFhir } from "./helpers";

interface Capability {
  resourceType: string;
  fhirVersion: string;
  format: string[];
  implementation: { url: string };
  rest: {
    security: { extension: { url: string; extension: { url: string; valueUri: string }[] }[] };
    interaction?: { code: string }[];
    resource: { type: string; interaction: { code: string }[]; searchParam: { name: string }[]; conditionalCreate: boolean; conditionalUpdate: boolean; searchInclude?: string[]; searchRevInclude?: string[] }[];
  }[];
}

const GW = "https://gateway.test";
/** The gateway's JWT_ISSUER in the test pool (the root wrangler.toml's local value). */
const ISSUER = "http://127.0.0.1:8787";

function tokenUrl(c: Capability): string | undefined {
  return c.rest[0]?.security.extension[0]?.extension.find((e) => e.url === "token")?.valueUri;
}

describe("GET /v1/phi/metadata", () => {
  it("checks with a validator that refuses what R4 refuses", async () => {
    const res = await env.FHIR_VALIDATOR.fetch("https://validator/", { method: "POST", body: JSON.stringify({ resourceType: "Patient", birthDate: "yesterday" }) });
    expect(await res.json()).toMatchObject({ valid: false });
  });

  it("is public, valid FHIR, and lists what the routes and the search parser implement", async () => {
    // No principal at all: the statement holds no PHI.
    const res = await SELF.fetch("https://phi.internal/v1/phi/metadata");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/fhir\+json/);
    const cap = await res.json<Capability>();
    await expectValidFhir(cap);
    expect(cap).toMatchObject({ resourceType: "CapabilityStatement", fhirVersion: "4.0.1", kind: "instance", status: "active" });
    expect(cap.format).toEqual(expect.arrayContaining(["json", "application/fhir+json"]));
    const patient = cap.rest[0]?.resource.find((r) => r.type === "Patient");
    const observation = cap.rest[0]?.resource.find((r) => r.type === "Observation");
    expect(patient?.interaction.map((i) => i.code).sort()).toEqual(["create", "delete", "history-instance", "read", "search-type", "update", "vread"]);
    expect(observation?.interaction.map((i) => i.code).sort()).toEqual(["create", "read", "search-type"]);
    // Bundles posted to the base: whole-system interactions.
    expect(cap.rest[0]?.interaction?.map((i) => i.code)).toEqual(["transaction", "batch"]);
    expect(patient?.searchParam.map((p) => p.name)).toEqual(SEARCH_PARAMS.Patient.map((p) => p.name));
    expect(observation?.searchParam.map((p) => p.name)).toEqual(SEARCH_PARAMS.Observation.map((p) => p.name));
    expect(patient).toMatchObject({ conditionalCreate: true, conditionalUpdate: true, searchRevInclude: ["Observation:patient"] });
    expect(observation).toMatchObject({ conditionalCreate: false, conditionalUpdate: false, searchInclude: ["Observation:patient"] });
    // Without a gateway in front, the request's own origin is the base.
    expect(cap.implementation.url).toBe("https://phi.internal/v1/phi");
    expect(tokenUrl(cap)).toBe("https://phi.internal/oauth/token");
  });

  it("every search parameter it lists is accepted by search, and _format picks JSON or is refused", async () => {
    const cap = await (await SELF.fetch("https://phi.internal/v1/phi/metadata")).json<Capability>();
    for (const r of cap.rest[0]?.resource ?? []) {
      for (const p of r.searchParam) {
        const value = p.name === "_lastUpdated" || p.name === "date" || p.name === "birthdate" ? "2024-01-01" : p.name === "_id" || p.name === "patient" || p.name === "subject" ? "abc" : "x";
        const res = await call(`/${r.type}?${p.name}=${value}`);
        expect(res.status, `${r.type}?${p.name}`).toBe(200);
      }
    }
    const plain = await SELF.fetch("https://phi.internal/v1/phi/metadata?_format=application/json");
    expect(plain.headers.get("content-type")).toMatch(/^application\/json/);
    const xml = await SELF.fetch("https://phi.internal/v1/phi/metadata?_format=xml");
    expect(xml.status).toBe(406);
    expect(await xml.json()).toMatchObject({ resourceType: "OperationOutcome" });
  });

  it("through the gateway: no token needed, absolute URLs on the origin the client called, the token endpoint on the issuer", async () => {
    const res = await env.GATEWAY.fetch(`${GW}/v1/phi/metadata`, { headers: { "x-forwarded-host": "evil.example", "x-oauth-issuer": "https://evil.example" } });
    expect(res.status).toBe(200);
    const cap = await res.json<Capability>();
    // The client's own X-Forwarded-Host and X-OAuth-Issuer are replaced by the gateway's.
    expect(cap.implementation.url).toBe(`${GW}/v1/phi`);
    // The token endpoint is the issuer's (JWT_ISSUER), as in the SMART configuration: the URL a private_key_jwt
    // assertion's aud must name, whichever host the client called.
    expect(tokenUrl(cap)).toBe(`${ISSUER}/oauth/token`);
    // The token URL it names is the gateway's real token endpoint (401 without a client, not 404).
    expect((await env.GATEWAY.fetch(tokenUrl(cap) ?? "", { method: "POST" })).status).not.toBe(404);
  });

  it("serves the SMART configuration through the gateway, public, with the same token endpoint", async () => {
    const res = await env.GATEWAY.fetch(`${GW}/v1/phi/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    const smart = await res.json<Record<string, unknown>>();
    expect(smart).toMatchObject({
      token_endpoint: `${ISSUER}/oauth/token`,
      jwks_uri: `${ISSUER}/.well-known/jwks.json`,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "private_key_jwt"],
      capabilities: ["client-confidential-symmetric", "client-confidential-asymmetric", "permission-v2", "permission-v1"],
    });
    expect(smart.scopes_supported).toEqual(expect.arrayContaining(["phi:read", "phi:write", "system/Patient.rs", "system/*.cruds", "system/Observation.read"]));
    const cap = await (await env.GATEWAY.fetch(`${GW}/v1/phi/metadata`)).json<Capability>();
    expect(tokenUrl(cap)).toBe(smart.token_endpoint);
    const jwks = await env.GATEWAY.fetch(String(smart.jwks_uri));
    expect(jwks.status).toBe(200);
  });
});

describe("through the gateway as a FHIR client sees it", () => {
  it("next links are absolute on the gateway's origin and work as they are; conditional update is routed", async () => {
    const tokRes = await env.GATEWAY.fetch(`${GW}/oauth/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${btoa(`${env.TEST_BOOTSTRAP_CLIENT_ID}:${env.TEST_BOOTSTRAP_CLIENT_SECRET}`)}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ grant_type: "client_credentials", scope: "phi:read phi:write" }),
    });
    const auth = { authorization: `Bearer ${(await tokRes.json<{ access_token: string }>()).access_token}` };
    for (let i = 0; i < 3; i++) {
      const res = await env.GATEWAY.fetch(`${GW}/v1/phi/Patient?identifier=${encodeURIComponent(`urn:gw|gw-${i}`)}`, {
        method: "PUT",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Viagateway" }], identifier: [{ system: "urn:gw", value: `gw-${i}` }] }),
      });
      expect(res.status).toBe(201);
    }
    const first = await env.GATEWAY.fetch(`${GW}/v1/phi/Patient/_search`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-www-form-urlencoded" },
      body: "family=Viagateway&_count=2&_total=accurate",
    });
    const bundle = await first.json<{ total: number; link: { relation: string; url: string }[]; entry: { fullUrl: string }[] }>();
    await expectValidFhir(bundle);
    expect(bundle.total).toBe(3);
    for (const e of bundle.entry) expect(e.fullUrl).toMatch(new RegExp(`^${GW}/v1/phi/Patient/`));
    const next = bundle.link.find((l) => l.relation === "next")?.url ?? "";
    expect(next.startsWith(`${GW}/v1/phi/Patient?_cursor=`)).toBe(true);
    const second = await env.GATEWAY.fetch(next, { headers: auth });
    expect(second.status).toBe(200);
    expect((await second.json<{ entry: unknown[] }>()).entry).toHaveLength(1);
  });
});
