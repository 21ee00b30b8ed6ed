import { ApiError } from "../../../shared/errors";
import { hasAllScopes } from "../../../shared/scopes";
import { platformScopeFor, smartAllows, smartScopeNeeded, type Interaction } from "../../../shared/smart-scopes";
import type { AuditAction, MoveAction } from "./audit/describe";
import { relativeUrl } from "./service/bundle-plan";

/**
 * Access decisions as pure functions over plain data (HIPAA 164.312(a)(1) access
 * control, 164.312(c)(1) integrity). Each returns a tagged result; `enforce` turns a
 * refusal into the one error type. The gateway checks the same scopes first; this is
 * defense in depth for anything that reaches the worker another way.
 */
export type Decision = { ok: true } | { ok: false; status: number; code: string; detail: string };

const ALLOW: Decision = { ok: true };

/** Actions on FHIR resources, as SMART permission letters (App Launch 2.x, scopes-and-launch-context). */
export const ACTION_INTERACTION = {
  create: "c",
  update: "u",
  delete: "d",
  read: "r",
  vread: "r",
  // Instance history is a read of that record's versions (SMART: `r` covers vread and history-instance).
  history: "r",
  search: "s",
} as const satisfies Record<string, Interaction>;
export type ResourceAction = keyof typeof ACTION_INTERACTION;

/** Actions outside FHIR's resource interactions keep the platform scope they always needed. */
export const AUDIT_ACTION_SCOPE = {
  "access-log": "audit:read",
  "audit-search": "audit:read",
  "audit-verify": "audit:read",
} as const satisfies Record<Exclude<AuditAction, ResourceAction | ExportAction | MoveAction | "bundle" | "tenant-shred" | "unknown">, string>;
export type AuditOnlyAction = keyof typeof AUDIT_ACTION_SCOPE;

/** Bulk Data export's actions (src/export/): decided by decideExport and decideExportFollowUp. */
export type ExportAction = "export" | "export-status" | "export-cancel" | "export-download" | "export-disclose";

function refused(resourceType: string, i: Interaction): Decision {
  return {
    ok: false,
    status: 403,
    code: "insufficient_scope",
    detail: `This operation needs the scope ${platformScopeFor(i)} or ${smartScopeNeeded(resourceType, i)} (or a SMART scope that includes it).`,
  };
}

/**
 * Resource-level access: every interaction the operation performs on `resourceType` must be
 * allowed by the token's scopes, platform (`phi:read` / `phi:write`, all types) or SMART
 * (`system/Patient.rs`: that type, those letters). The gateway checked only the coarse scope.
 */
export function decideResource(scopes: readonly string[], resourceType: string, ...interactions: Interaction[]): Decision {
  const missing = interactions.find((i) => !smartAllows(scopes, resourceType, i));
  return missing === undefined ? ALLOW : refused(resourceType, missing);
}

/** A FHIR action on one resource type (the interaction it is, per `ACTION_INTERACTION`). */
export function decideScope(scopes: readonly string[], action: ResourceAction, resourceType: string): Decision {
  return decideResource(scopes, resourceType, ACTION_INTERACTION[action]);
}

/**
 * `_include=Observation:patient` reads the Patients the page's Observations reference (`r` on
 * Patient); `_revinclude=Observation:patient` searches Observations by patient (`s` on
 * Observation). A token without them gets 403 for the whole search, as HAPI's authorization
 * interceptor does, rather than a Bundle silently missing what was asked for.
 */
export function decideIncludes(scopes: readonly string[], q: { include: boolean; revinclude: boolean }): Decision {
  if (q.include) {
    const d = decideResource(scopes, "Patient", "r");
    if (!d.ok) return d;
  }
  return q.revinclude ? decideResource(scopes, "Observation", "s") : ALLOW;
}

/**
 * Bulk Data export discloses what a search of each exported type would: `s` on every type asked for
 * (`phi:read`, or SMART `system/*.rs`, `system/Patient.s` ... as Backend Services clients hold).
 */
export function decideExport(scopes: readonly string[], types: readonly string[]): Decision {
  for (const t of types) {
    const d = decideResource(scopes, t, "s");
    if (!d.ok) return d;
  }
  return ALLOW;
}

/** Status, cancel and download of an export: only its own client reaches a job; it must still search something. */
export function decideExportFollowUp(scopes: readonly string[]): Decision {
  return smartAllows(scopes, "Patient", "s") || smartAllows(scopes, "Observation", "s") ? ALLOW : decideResource(scopes, "Patient", "s");
}

const ENTRY_INTERACTION: Record<string, Interaction> = { POST: "c", PUT: "u", DELETE: "d" };

/**
 * A batch or transaction Bundle: each entry needs what the same request alone would need, on its
 * resource type (`GET Patient/1` `r`, `GET Patient?...` `s`, `POST` `c`, `PUT` `u`, `DELETE` `d`), so a
 * SMART `system/Patient.rs` token cannot write by wrapping the write in a Bundle. An entry whose
 * method is unknown is judged as a create; malformed entries are refused by the Bundle's validation.
 * A `request.url` absolute on `base` is judged as the same URL relative to it, as the entry is planned.
 */
export function decideBundle(scopes: readonly string[], entries: readonly { method: unknown; url: unknown }[], base: string): Decision {
  for (const e of entries) {
    const url = typeof e.url === "string" ? relativeUrl(e.url, base) : "";
    const type = url.split(/[/?]/)[0] ?? "";
    const read = e.method === "GET" || e.method === "HEAD";
    const i: Interaction = read ? (/^[A-Za-z]+\/[^/?]+/.test(url) ? "r" : "s") : (ENTRY_INTERACTION[String(e.method)] ?? "c");
    const d = decideResource(scopes, type, i);
    if (!d.ok) return d;
  }
  return ALLOW;
}

/** The audit routes: platform scopes only (SMART scopes grant FHIR data, not the audit trail). */
export function decideAuditScope(scopes: readonly string[], action: AuditOnlyAction): Decision {
  const needed = AUDIT_ACTION_SCOPE[action];
  return hasAllScopes([...scopes], [needed])
    ? ALLOW
    : { ok: false, status: 403, code: "insufficient_scope", detail: `This operation needs the scope ${needed}.` };
}

/** What a reader may see of a resource's current state (FHIR read: 404 unknown, 410 deleted). */
export function decideReadable(head: { deleted: number } | null): Decision {
  if (!head) return { ok: false, status: 404, code: "not_found", detail: "No resource has this id." };
  if (head.deleted) return { ok: false, status: 410, code: "gone", detail: "This resource was deleted." };
  return ALLOW;
}

/** `W/"3"` (or `"3"`) -> 3; anything else -> undefined. */
export function parseVersionTag(tag: string): number | undefined {
  const m = /^(?:W\/)?"(\d{1,9})"$/.exec(tag.trim());
  return m?.[1] ? Number(m[1]) : undefined;
}

/**
 * Optimistic locking for updates and deletes (RFC 9110 13.1.1, FHIR "managing
 * resource contention"): with If-Match, the version must be the current one.
 */
export function decideVersionMatch(ifMatch: string | undefined, head: { version_id: number }): Decision {
  if (ifMatch === undefined) return ALLOW;
  const wanted = parseVersionTag(ifMatch);
  if (wanted === head.version_id) return ALLOW;
  return { ok: false, status: 412, code: "version_mismatch", detail: "If-Match does not name the current version." };
}

export function enforce(d: Decision): void {
  if (!d.ok) throw new ApiError(d.status, d.code, d.detail);
}
