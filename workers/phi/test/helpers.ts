import { env, SELF } from "cloudflare:test";
import { expect } from "vitest";
import { sealAll as sealChain, withoutGuards } from "../../../shared/testing/audit";
import { gatewayHeaders } from "../../../shared/testing/principal";

export const BASE = "https://phi.internal/v1/phi";
export const FHIR = "application/fhir+json";

export interface Caller {
  sub?: string;
  /** The caller's tenant (default: the default tenant) and its PHI shard (default 0). */
  tenantId?: string;
  shard?: number;
  scopes?: string[];
  roles?: string[];
}

const DEFAULT_SCOPES = ["phi:read", "phi:write", "audit:read"];

/** A request as the gateway would forward it: signed principal attached. */
export async function call(
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; as?: Caller; raw?: string; contentType?: string; via?: Fetcher } = {},
): Promise<Response> {
  const who = init.as ?? {};
  const headers: Record<string, string> = {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, {
      sub: who.sub ?? "clinician-1",
      scopes: who.scopes ?? DEFAULT_SCOPES,
      roles: who.roles ?? ["clinician"],
      ...(who.tenantId ? { tenantId: who.tenantId } : {}),
      ...(who.shard !== undefined ? { shard: who.shard } : {}),
    })),
    ...init.headers,
  };
  let body: string | undefined = init.raw;
  if (init.body !== undefined) body = JSON.stringify(init.body);
  if (body !== undefined) headers["content-type"] = init.contentType ?? FHIR;
  // `via`: another instance of phi (another isolate) instead of the one under test.
  return (init.via ?? SELF).fetch(path.startsWith("http") ? path : `${BASE}${path}`, { method: init.method ?? "GET", headers, body });
}

/** The gateway's origin in tests (its X-Forwarded-Host as phi sees it). */
export const GW = "https://gateway.test";

/** A real access token from the auth worker's token endpoint (client credentials, HTTP Basic). */
export async function tokenFor(id: string, secret: string, scope: string): Promise<string> {
  const res = await env.GATEWAY.fetch(`${GW}/oauth/token`, {
    method: "POST",
    headers: { authorization: `Basic ${btoa(`${id}:${secret}`)}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", scope }),
  });
  const body = await res.json<{ access_token?: string }>();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return String(body.access_token);
}

/** The bootstrap client's token (a platform client) with exactly `scope`. */
export function gatewayToken(scope: string): Promise<string> {
  return tokenFor(env.TEST_BOOTSTRAP_CLIENT_ID, env.TEST_BOOTSTRAP_CLIENT_SECRET, scope);
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return res.json<T>();
}

export function patient(family: string, given = "Ann", extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: "Patient",
    name: [{ use: "official", family, given: [given] }],
    gender: "female",
    birthDate: "1980-02-29",
    identifier: [{ system: "urn:oid:2.16.840.1.113883.4.1", value: `999-00-${Math.floor(Math.random() * 9000 + 1000)}` }],
    telecom: [{ system: "phone", value: "555-0100", use: "home" }],
    address: [{ line: ["1 Main St"], city: "Springfield", state: "MA", postalCode: "01101" }],
    ...extra,
  };
}

export async function createPatient(body: Record<string, unknown>): Promise<{ id: string; res: Response; resource: Record<string, unknown> }> {
  const res = await call("/Patient", { method: "POST", body });
  const resource = await json(res.clone());
  return { id: String(resource.id), res, resource };
}

export function form(params: Record<string, string>): { raw: string; contentType: string; method: string } {
  return { method: "POST", raw: new URLSearchParams(params).toString(), contentType: "application/x-www-form-urlencoded" };
}

export interface AuditRecordJson {
  seq: number;
  prev_hash: string | null;
  hash: string | null;
  sealed_at: string | null;
  action: string;
  outcome: string;
  reason: string;
  resource_type: string;
  resource_id: string;
  patient_ids: string;
  actor_sub: string;
  purpose_of_use: string;
  request_id: string;
  trace_id: string;
  at: string;
}

export async function auditRows(): Promise<AuditRecordJson[]> {
  const { results } = await env.DB.prepare("SELECT * FROM phi_audit ORDER BY seq").all<AuditRecordJson>();
  return results;
}

/** Checks a resource against the official FHIR R4 JSON schema (Ajv in Node, through a binding). */
export async function expectValidFhir(resource: unknown): Promise<void> {
  const res = await env.FHIR_VALIDATOR.fetch("https://validator/", { method: "POST", body: JSON.stringify(resource) });
  const r = await res.json<{ valid: boolean; errors: unknown[] }>();
  expect(r.errors, JSON.stringify(resource).slice(0, 300)).toEqual([]);
  expect(r.valid).toBe(true);
}

export const PHI_CHAIN = { table: "phi_audit", checkpoints: "phi_audit_checkpoints" };

/** Seals every pending record now, by the real sealer object's alarm. */
export function sealAll(): Promise<void> {
  return sealChain(env.DB, env.AUDIT_SEALER, PHI_CHAIN);
}

/** Edits records as an insider with raw database access would: guard triggers dropped meanwhile. */
export function asInsider<T>(fn: () => Promise<T>): Promise<T> {
  return withoutGuards(env.DB, PHI_CHAIN.table, fn);
}
