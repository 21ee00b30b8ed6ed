import type { Context } from "hono";
import { FHIR_JSON } from "./outcome";

/**
 * `Prefer: return=minimal | representation | OperationOutcome` on writes (RFC 7240,
 * FHIR R4 http.html#ops): an empty body, the stored resource (the default), or an
 * OperationOutcome saying what happened. Headers (Location, ETag, Last-Modified) are the
 * same in all three, so a client can always follow up.
 */
export type ReturnPreference = "minimal" | "representation" | "OperationOutcome";

/** The `return` preference a client stated, or undefined (then the resource is returned, as always). */
export function returnPreference(header: string | undefined): ReturnPreference | undefined {
  for (const part of (header ?? "").split(/[,;]/)) {
    const m = /^\s*return\s*=\s*"?([A-Za-z]+)"?\s*$/.exec(part);
    if (m?.[1] === "minimal" || m?.[1] === "representation" || m?.[1] === "OperationOutcome") return m[1];
  }
  return undefined;
}

/** A create, update or conditional create/update of a resource (not a `_search`). */
function isResourceWrite(method: string, url: string): boolean {
  if (method !== "POST" && method !== "PUT") return false;
  const pathname = new URL(url).pathname;
  return /^\/v1\/phi\/(Patient|Observation)(\/[A-Za-z0-9\-.]+)?$/.test(pathname) && !pathname.endsWith("/_search");
}

/**
 * Applies the preference to a successful write's answer after the handler built it
 * (the handlers stay typed with their one response shape).
 */
export async function applyPreference(c: Context): Promise<void> {
  const status = c.res.status;
  if ((status !== 200 && status !== 201) || !isResourceWrite(c.req.method, c.req.url)) return;
  const pref = returnPreference(c.req.header("prefer"));
  if (pref === undefined) return;
  const headers = new Headers(c.res.headers);
  headers.set("preference-applied", `return=${pref}`);
  if (pref === "representation") {
    c.res = new Response(c.res.body, { status, headers });
    return;
  }
  if (pref === "minimal") {
    await c.res.body?.cancel();
    headers.delete("content-type");
    c.res = new Response(null, { status, headers });
    return;
  }
  const written = await c.res.json<{ resourceType?: string; id?: string }>();
  const what = `${written.resourceType ?? ""}/${written.id ?? ""}`;
  const outcome = {
    resourceType: "OperationOutcome",
    issue: [{ severity: "information", code: "informational", details: { text: status === 201 ? `Created ${what}.` : `Done: ${what}.` } }],
  };
  headers.set("content-type", FHIR_JSON);
  c.res = new Response(JSON.stringify(outcome), { status, headers });
}
