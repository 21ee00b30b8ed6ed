import { z } from "zod";
import type { Patient } from "../fhir/patient";

/**
 * The contract with phi: FHIR conditional create (R4 http.html#ccreate).
 * `If-None-Exist: identifier=<system>|<value>` makes phi answer 200 with the
 * patient it already holds under that identifier, or create it (201). That is
 * what makes reloading a seed idempotent.
 */
export const PHI_PATIENT_URL = "https://phi.internal/v1/phi/Patient";

export type PhiOutcome =
  | { outcome: "created" | "existing"; id: string }
  | { outcome: "failed"; status: number; code: string };

/** System and value hold only `[A-Za-z0-9:_-]` (see the Seed schema): query-safe as they are. */
export function ifNoneExist(identifier: { system: string; value: string }): string {
  return `identifier=${identifier.system}|${identifier.value}`;
}

const Created = z.object({ resourceType: z.literal("Patient"), id: z.string().min(1).max(64) });
const ErrorCode = z.union([
  z.object({ code: z.string().regex(/^[a-z_-]{1,40}$/) }).transform((p) => p.code),
  z
    .object({ resourceType: z.literal("OperationOutcome"), issue: z.array(z.object({ code: z.string().regex(/^[a-z_-]{1,40}$/) })).min(1) })
    .transform((o) => o.issue[0]?.code ?? "unknown"),
]);

/**
 * What a phi answer means for the load report. Pure. Only a bounded error code
 * is kept from an error body, never its text.
 */
export function classifyPhiResponse(status: number, body: unknown): PhiOutcome {
  if (status === 200 || status === 201) {
    const r = Created.safeParse(body);
    if (r.success) return { outcome: status === 201 ? "created" : "existing", id: r.data.id };
    return { outcome: "failed", status: 502, code: "invalid_phi_response" };
  }
  const code = ErrorCode.safeParse(body);
  return { outcome: "failed", status, code: code.success ? code.data : "unknown" };
}

export interface PhiCall {
  phi: Fetcher;
  principalHeader: string;
  requestId: string;
  traceparent?: string;
}

/** Sends one patient (without its id: phi assigns ids) as a conditional create. */
export async function createInPhi(call: PhiCall, patient: Patient, identifier: { system: string; value: string }): Promise<PhiOutcome> {
  const { id: _ignored, ...body } = patient;
  const headers: Record<string, string> = {
    "content-type": "application/fhir+json",
    accept: "application/fhir+json",
    "x-gateway-principal": call.principalHeader,
    "x-request-id": call.requestId,
    "if-none-exist": ifNoneExist(identifier),
  };
  if (call.traceparent) headers.traceparent = call.traceparent;
  let res: Response;
  try {
    res = await call.phi.fetch(PHI_PATIENT_URL, { method: "POST", headers, body: JSON.stringify(body) });
  } catch {
    return { outcome: "failed", status: 502, code: "phi_unreachable" };
  }
  let parsed: unknown;
  try {
    parsed = await res.json();
  } catch {
    parsed = undefined;
  }
  return classifyPhiResponse(res.status, parsed);
}
