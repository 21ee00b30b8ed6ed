import { scopeCovers } from "./scopes";

/**
 * SMART on FHIR scopes (App Launch 2.x, scopes-and-launch-context.html) mapped onto the
 * platform's `phi:read` / `phi:write`. Pure functions only.
 *
 * - `system/<Type>.<perms>` with v2 permissions, a non-empty subset of `cruds` in that order
 *   (`system/Patient.rs`, `system/Observation.cruds`), or the v1 forms `read` (= `rs`),
 *   `write` (= `cud`) and `*` (= `cruds`). `<Type>` is a resource type this server holds or `*`.
 * - Only the `system` context: this server has no launch and no user, so `patient/...` and
 *   `user/...` scopes are refused rather than silently widened or narrowed.
 * - Granular scopes (`system/Observation.rs?category=...`) are refused: they would need a
 *   filter on every query, which the search layer does not apply.
 *
 * Reading (`r`, `s`) needs the platform scope `phi:read`, writing (`c`, `u`, `d`) `phi:write`:
 * a client gets no SMART scope its platform scopes do not already allow.
 */
export const SMART_RESOURCE_TYPES = ["Patient", "Observation"] as const;
export type SmartResourceType = (typeof SMART_RESOURCE_TYPES)[number];

/** FHIR interactions as SMART v2 permission letters. */
export const INTERACTIONS = ["c", "r", "u", "d", "s"] as const;
export type Interaction = (typeof INTERACTIONS)[number];

export interface SmartScope {
  resourceType: SmartResourceType | "*";
  perms: readonly Interaction[];
}

export type SmartRefusal = "unsupported_context" | "unknown_resource_type" | "bad_permissions" | "granular_unsupported";
export type SmartParse = { ok: true; scope: SmartScope } | { ok: false; reason: SmartRefusal } | { ok: false; reason: "not_smart" };

const PREFIX = /^(patient|user|system)\/(.*)$/s;
const V1: Record<string, readonly Interaction[]> = { read: ["r", "s"], write: ["c", "u", "d"], "*": INTERACTIONS };

function perms(p: string): readonly Interaction[] | undefined {
  // Own keys only: `constructor`, `toString` or `__proto__` are not permissions (they came back as functions).
  const v1 = Object.hasOwn(V1, p) ? V1[p] : undefined;
  if (v1) return v1;
  // v2: letters in the order c r u d s, each at most once, at least one.
  if (!/^c?r?u?d?s?$/.test(p) || p.length === 0) return undefined;
  return INTERACTIONS.filter((l) => p.includes(l));
}

/** Reads one scope token; `not_smart` for anything without a SMART context prefix. */
export function parseSmartScope(token: string): SmartParse {
  const m = PREFIX.exec(token);
  if (!m) return { ok: false, reason: "not_smart" };
  const [, context, rest = ""] = m;
  if (context !== "system") return { ok: false, reason: "unsupported_context" };
  if (rest.includes("?")) return { ok: false, reason: "granular_unsupported" };
  const dot = rest.indexOf(".");
  const type = dot < 0 ? rest : rest.slice(0, dot);
  const resourceType = type === "*" ? "*" : SMART_RESOURCE_TYPES.find((t) => t === type);
  if (!resourceType) return { ok: false, reason: "unknown_resource_type" };
  const letters = dot < 0 ? undefined : perms(rest.slice(dot + 1));
  if (!letters) return { ok: false, reason: "bad_permissions" };
  return { ok: true, scope: { resourceType, perms: letters } };
}

/** The platform scope an interaction needs. */
export function platformScopeFor(i: Interaction): "phi:read" | "phi:write" {
  return i === "r" || i === "s" ? "phi:read" : "phi:write";
}

/** The platform scopes a SMART scope needs (and, once granted, stands for at the gateway). */
export function platformScopesOf(s: SmartScope): string[] {
  return [...new Set(s.perms.map(platformScopeFor))];
}

/** Why a requested SMART scope is refused, in words a client developer can act on. */
export const SMART_REFUSAL_TEXT: Record<SmartRefusal | "exceeds_client", string> = {
  unsupported_context:
    "Only system/ SMART scopes are supported (SMART Backend Services): patient/ and user/ launch contexts are not, as this server has no launch or user.",
  unknown_resource_type: `The SMART scope names a resource type this server does not hold (${SMART_RESOURCE_TYPES.join(", ")} or *).`,
  bad_permissions: "The SMART scope's permissions must be read, write, * or a subset of cruds in that order (e.g. rs, cud).",
  granular_unsupported: "Granular SMART scopes (with ?parameters) are not supported.",
  exceeds_client: "The SMART scope exceeds this client's platform scopes (r and s need phi:read; c, u and d need phi:write).",
};

/**
 * Checks one requested SMART scope against the client's allowed platform scopes.
 * `not_smart` means the token is not a SMART scope at all (the platform rules apply).
 */
export function smartRequestDecision(allowed: readonly string[], token: string): { ok: true } | { ok: false; reason: SmartRefusal | "exceeds_client" | "not_smart" } {
  const p = parseSmartScope(token);
  if (!p.ok) return p;
  return platformScopesOf(p.scope).every((s) => scopeCovers(allowed, s)) ? { ok: true } : { ok: false, reason: "exceeds_client" };
}

/**
 * The granted scopes plus the platform scopes their SMART scopes stand for. The gateway's
 * route table checks these coarse scopes; phi then checks type and interaction (`smartAllows`).
 */
export function withPlatformScopes(granted: readonly string[]): string[] {
  const out = new Set(granted);
  for (const g of granted) {
    const p = parseSmartScope(g);
    if (p.ok) for (const s of platformScopesOf(p.scope)) out.add(s);
  }
  return [...out];
}

/**
 * Whether `scopes` (as granted in the token) allow `interaction` on `resourceType`. A platform
 * scope covers every resource type (`phi:read` for r and s, `phi:write` for c, u and d, `phi:*`
 * both); a SMART scope covers its own type (or every type for `*`) and its own letters.
 */
export function smartAllows(scopes: readonly string[], resourceType: string, interaction: Interaction): boolean {
  if (scopeCovers(scopes, platformScopeFor(interaction))) return true;
  return scopes.some((g) => {
    const p = parseSmartScope(g);
    return p.ok && (p.scope.resourceType === "*" || p.scope.resourceType === resourceType) && p.scope.perms.includes(interaction);
  });
}

/** The narrowest SMART scope that would allow it, for error messages (`system/Patient.s`). */
export function smartScopeNeeded(resourceType: string, interaction: Interaction): string {
  return `system/${resourceType}.${interaction}`;
}

/** What discovery documents list: the v2 forms per type and wildcard, and the v1 ones still accepted. */
export const SMART_SCOPES_SUPPORTED: readonly string[] = (["*", ...SMART_RESOURCE_TYPES] as const).flatMap((t) =>
  ["cruds", "rs", "cud", "read", "write"].map((p) => `system/${t}.${p}`),
);
