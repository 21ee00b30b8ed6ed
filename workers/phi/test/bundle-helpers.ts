import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { countD1 } from "../../auth/test/d1-count";
import { tenantSettings } from "../src/config";
import worker from "../src/index";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { BASE, call, FHIR, json } from "./helpers";

export interface BundleEntryOut {
  fullUrl?: string;
  resource?: Record<string, unknown> & { id?: string; resourceType?: string };
  response: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: { issue: { code: string; details?: { coding?: { code: string }[] } }[] } };
}
export interface BundleOut {
  resourceType: string;
  type: string;
  entry?: BundleEntryOut[];
}

export function txn(type: "transaction" | "batch", entry: unknown[]): Record<string, unknown> {
  return { resourceType: "Bundle", type, entry };
}

export const urn = () => `urn:uuid:${crypto.randomUUID()}`;

export function observation(subject: string, text = "pulse"): Record<string, unknown> {
  return { resourceType: "Observation", status: "final", code: { text }, subject: { reference: subject }, valueQuantity: { value: 72, unit: "/min" } };
}

export function postBundle(body: unknown, init: { scopes?: string[]; headers?: Record<string, string> } = {}): Promise<Response> {
  return call("", { method: "POST", body, headers: init.headers ?? {}, ...(init.scopes ? { as: { scopes: init.scopes } } : {}) });
}

/** Rows of every table phi writes: a refused transaction must leave them as they were. */
export async function tableCounts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of ["resource_versions", "search_index", "phi_audit"]) {
    out[t] = (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${t}`).first<{ n: number }>())?.n ?? -1;
  }
  return out;
}

/** The OperationOutcome's problem code (first issue). */
export async function outcomeCode(res: Response): Promise<string | undefined> {
  const body = await json<{ resourceType: string; issue?: { details?: { coding?: { code: string }[] } }[] }>(res);
  expect(body.resourceType).toBe("OperationOutcome");
  return body.issue?.[0]?.details?.coding?.[0]?.code;
}

/** Posts `body` to this worker with its database wrapped to count D1 round trips (each call reaching D1). */
export async function postCounted(body: unknown): Promise<{ res: Response; roundTrips: number }> {
  // The tenant's data key is read once per isolate (shared/keys/tenant-keys.ts): read before counting, so the count is the operation's own.
  await tenantSettings(env, env.DB, 0, DEFAULT_TENANT_ID);
  const counted = countD1(env.DB);
  const headers = {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "clinician-1", scopes: ["phi:read", "phi:write"], roles: ["clinician"] })),
    "content-type": FHIR,
  };
  const ctx = createExecutionContext();
  if (!worker.fetch) throw new Error("the worker has no fetch handler");
  const req = new Request(BASE, { method: "POST", headers, body: JSON.stringify(body) });
  const res = await worker.fetch(req as Request<unknown, IncomingRequestCfProperties>, { ...env, DB: counted.db }, ctx);
  await waitOnExecutionContext(ctx);
  return { res, roundTrips: counted.roundTrips() };
}
