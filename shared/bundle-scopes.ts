/**
 * The scopes a FHIR batch or transaction Bundle posted to `POST /v1/phi` needs
 * (R4 http.html#transaction): every scope any of its entries needs, so a token
 * that may only read cannot create, update or delete by wrapping the write in a
 * Bundle. The gateway checks it before forwarding and phi again (defense in
 * depth): both call this one function, so swapping the scope model (SMART v2
 * resource-level scopes) means changing `entryScope` only. Pure.
 */

/** The scope one entry needs: reads need `phi:read`; anything else, an unknown method included, `phi:write`. */
export function entryScope(method: unknown, _url: unknown): string {
  return method === "GET" || method === "HEAD" ? "phi:read" : "phi:write";
}

/** A body naming no entry still needs a phi scope: nobody without one reaches phi through this route. */
export const BUNDLE_FLOOR_SCOPES: readonly string[] = ["phi:read"];

function field(o: unknown, name: string): unknown {
  return typeof o === "object" && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>)[name] : undefined;
}

/** Every scope the Bundle's entries need (sorted, no duplicates); the floor when it names no entry. */
export function bundleScopes(body: unknown): string[] {
  const entries = field(body, "entry");
  const out = new Set<string>();
  if (Array.isArray(entries)) {
    for (const e of entries) {
      const request = field(e, "request");
      out.add(entryScope(field(request, "method"), field(request, "url")));
    }
  }
  return out.size > 0 ? [...out].sort() : [...BUNDLE_FLOOR_SCOPES];
}
