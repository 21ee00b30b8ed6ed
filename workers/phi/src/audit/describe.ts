/**
 * Pure mapping of a request to what the audit trail records about it. Path ids are
 * recorded only when they have the shape of the ids this server assigns, so a client
 * that puts a name or an SSN in a URL does not get it written into the audit trail.
 */
export type AuditAction =
  | "create"
  | "read"
  | "vread"
  | "search"
  | "update"
  | "delete"
  | "history"
  | "access-log"
  | "audit-search"
  | "audit-verify"
  | "export"
  | "export-status"
  | "export-cancel"
  | "export-download"
  | "export-disclose"
  | "bundle"
  | "tenant-shred"
  | MoveAction
  | "unknown";

/** A tenant's move between shards (src/move/), recorded on both shards by the internal move route. */
export type MoveAction = "tenant-move-in" | "tenant-move-out";

export interface RequestDescription {
  action: AuditAction;
  resourceType: string;
  resourceId: string;
}

const SERVER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function safeId(raw: string | undefined): string {
  if (raw === undefined) return "";
  return SERVER_ID.test(raw) ? raw : "(not a server id)";
}

/** The server ids among `ids` (patients a record names): anything else a client chose is left out, never recorded. */
export function serverIds(ids: readonly string[]): string[] {
  return ids.filter((id) => SERVER_ID.test(id));
}

export function describeRequest(method: string, pathname: string): RequestDescription {
  // A Bundle posted to the base: its entries are recorded one by one; this names a refused Bundle.
  if (pathname === "/v1/phi") return method === "POST" ? { action: "bundle", resourceType: "Bundle", resourceId: "" } : { action: "unknown", resourceType: "", resourceId: "" };
  const parts = pathname.replace(/^\/v1\/phi\/?/, "").split("/");
  const [type = "", id, sub, vid] = parts;
  const unknown: RequestDescription = { action: "unknown", resourceType: "", resourceId: "" };
  if (type === "audit") {
    if (id === undefined && method === "GET") return { action: "audit-search", resourceType: "AuditTrail", resourceId: "" };
    if (id === "verify" && sub === undefined && method === "GET") return { action: "audit-verify", resourceType: "AuditTrail", resourceId: "" };
    return unknown;
  }
  const bulk = describeExport(method, parts);
  if (bulk) return bulk;
  if (type !== "Patient" && type !== "Observation") return unknown;
  const known = (action: AuditAction, rid = ""): RequestDescription => ({ action, resourceType: type, resourceId: rid });
  if (id === undefined) {
    if (method === "POST") return known("create");
    if (method === "GET") return known("search");
    return unknown;
  }
  if (id === "_search") return method === "POST" && sub === undefined ? known("search") : unknown;
  if (sub === undefined) {
    if (method === "GET") return known("read", safeId(id));
    if (method === "PUT") return known("update", safeId(id));
    if (method === "DELETE") return known("delete", safeId(id));
    return unknown;
  }
  if (method !== "GET" || parts.length > 4) return unknown;
  if (sub === "_history") return known(vid === undefined ? "history" : "vread", safeId(id));
  if (sub === "$access-log" && vid === undefined) return known("access-log", safeId(id));
  return unknown;
}

/**
 * Bulk Data export routes (src/export/): the kick-off (system or Patient level), the job's
 * status (poll, cancel) and its files. The job id is recorded; the patients an export
 * discloses are recorded by its chunks (action `export-disclose`).
 */
function describeExport(method: string, parts: string[]): RequestDescription | undefined {
  const [first = "", second, third, fourth] = parts;
  if (method === "GET" || method === "POST") {
    if (first === "$export" && second === undefined) return { action: "export", resourceType: "System", resourceId: "" };
    if (first === "Patient" && second === "$export" && third === undefined) return { action: "export", resourceType: "Patient", resourceId: "" };
  }
  if (first === "$export-status" && second !== undefined && third === undefined) {
    if (method === "GET") return { action: "export-status", resourceType: "ExportJob", resourceId: safeId(second) };
    if (method === "DELETE") return { action: "export-cancel", resourceType: "ExportJob", resourceId: safeId(second) };
  }
  if (first === "$export-file" && method === "GET" && third !== undefined && fourth === undefined) {
    return { action: "export-download", resourceType: "ExportJob", resourceId: safeId(second) };
  }
  return undefined;
}

export type AuditOutcome = "success" | "denied" | "failed" | "error";

/** Denied = the caller may not (401/403); failed = the request could not be served (other 4xx); error = ours (5xx). */
export function outcomeFor(status: number): AuditOutcome {
  if (status < 400) return "success";
  if (status === 401 || status === 403) return "denied";
  if (status < 500) return "failed";
  return "error";
}

/** `X-Purpose-Of-Use`: an HL7 PurposeOfUse code (TREAT, ETREAT, HPAYMT, HOPERAT, PUBHLTH ...), never free text. */
export function parsePurpose(header: string | undefined): string | undefined {
  if (header === undefined || header.trim() === "") return "unspecified";
  const v = header.trim();
  return /^[A-Za-z][A-Za-z0-9._-]{0,63}$/.test(v) ? v : undefined;
}

/** The trace id of a W3C `traceparent` header (Trace Context, section 3.2), or "". */
export function traceIdOf(traceparent: string | undefined): string {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent?.trim() ?? "");
  return m?.[1] && !/^0+$/.test(m[1]) ? m[1] : "";
}
