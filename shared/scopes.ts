/**
 * Scope vocabulary and matching. Scopes are `resource:action`; a granted
 * `resource:*` covers every action of that resource. Pure functions only.
 */
export const SCOPES = [
  "phi:read",
  "phi:write",
  "payment:read",
  "payment:write",
  "payment:refund",
  "payment:approve",
  "synthetic:generate",
  "device:read",
  "device:write",
  "device:connect",
  "audit:read",
  "admin",
] as const;
export type Scope = (typeof SCOPES)[number];

export const ROLES = ["admin", "clinician", "billing", "auditor", "device", "tester"] as const;
export type Role = (typeof ROLES)[number];

/** What each role grants. Least privilege: admins manage clients, they do not read PHI. */
export const ROLE_SCOPES: Record<Role, readonly string[]> = {
  admin: ["admin", "audit:read"],
  clinician: ["phi:read", "phi:write", "device:read"],
  billing: ["payment:read", "payment:write", "payment:refund"],
  auditor: ["audit:read", "payment:read"],
  device: ["device:connect"],
  tester: ["synthetic:generate"],
};

const SCOPE_TOKEN = /^(?:[a-z]+:(?:[a-z]+|\*)|admin)$/;

/** A syntactically valid scope or wildcard (`phi:*`). */
export function isScopeToken(s: string): boolean {
  return SCOPE_TOKEN.test(s);
}

/** Splits an RFC 6749 scope string (space-delimited, section 3.3). */
export function parseScopeString(scope: string | undefined | null): string[] {
  if (!scope) return [];
  return [...new Set(scope.split(" ").filter((s) => s.length > 0))];
}

/** True when `granted` (which may hold wildcards) covers the single scope `wanted`. */
export function scopeCovers(granted: readonly string[], wanted: string): boolean {
  if (granted.includes(wanted)) return true;
  const colon = wanted.indexOf(":");
  if (colon < 0) return false;
  return granted.includes(wanted.slice(0, colon) + ":*");
}

/** True when every scope in `wanted` is covered by `granted`. */
export function hasAllScopes(granted: readonly string[], wanted: readonly string[]): boolean {
  return wanted.every((w) => scopeCovers(granted, w));
}

/** Everything a client may ask for: its own scopes plus those of its roles. */
export function allowedScopes(roles: readonly string[], scopes: readonly string[]): string[] {
  const out = new Set(scopes);
  for (const r of roles) for (const s of ROLE_SCOPES[r as Role] ?? []) out.add(s);
  return [...out];
}

/**
 * Whether a requested scope (possibly a wildcard) is within what is allowed.
 * `phi:*` may be requested only by a client allowed `phi:*` itself.
 */
export function requestWithin(allowed: readonly string[], requested: string): boolean {
  if (requested.endsWith(":*")) return allowed.includes(requested);
  return scopeCovers(allowed, requested);
}
