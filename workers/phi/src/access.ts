import { ApiError } from "../../../shared/errors";
import { hasAllScopes } from "../../../shared/scopes";
import type { AuditAction } from "./audit/describe";

/**
 * Access decisions as pure functions over plain data (HIPAA 164.312(a)(1) access
 * control, 164.312(c)(1) integrity). Each returns a tagged result; `enforce` turns a
 * refusal into the one error type. The gateway checks the same scopes first; this is
 * defense in depth for anything that reaches the worker another way.
 */
export type Decision = { ok: true } | { ok: false; status: number; code: string; detail: string };

const ALLOW: Decision = { ok: true };

export const ACTION_SCOPE: Record<Exclude<AuditAction, "unknown">, string> = {
  create: "phi:write",
  update: "phi:write",
  delete: "phi:write",
  read: "phi:read",
  vread: "phi:read",
  search: "phi:read",
  history: "phi:read",
  "access-log": "audit:read",
  "audit-search": "audit:read",
  "audit-verify": "audit:read",
  // A Bundle needs what its entries need (shared/bundle-scopes.ts); this is the floor of one naming none.
  bundle: "phi:read",
};

export function decideScope(scopes: readonly string[], action: Exclude<AuditAction, "unknown">): Decision {
  const needed = ACTION_SCOPE[action];
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
