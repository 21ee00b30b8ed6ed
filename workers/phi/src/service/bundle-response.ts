import type { ApiError } from "../../../../shared/errors";
import { statusLine, type ResponseEntry } from "../fhir/bundle";
import { operationOutcome } from "../fhir/outcome";
import type { ReturnPreference } from "../fhir/prefer";
import type { EntryResult } from "./bundle-entry";
import { etag } from "./present";

/**
 * The answer to one entry (R4 bundle.html, Bundle.entry.response): status, the
 * version's location (absolute, on the base the client called), ETag and
 * lastModified, and the resource as `Prefer: return` asks for writes (reads always
 * carry theirs).
 */
export function successEntry(base: string, r: EntryResult, pref: ReturnPreference | undefined): ResponseEntry {
  const { row } = r;
  const response: ResponseEntry["response"] = {
    status: statusLine(r.status),
    location: `${base}/${row.resource_type}/${row.id}/_history/${row.version_id}`,
    etag: etag(row.version_id),
    lastModified: row.last_updated,
  };
  const fullUrl = `${base}/${row.resource_type}/${row.id}`;
  if (r.write && pref === "minimal") return { fullUrl, response };
  if (r.write && pref === "OperationOutcome") {
    const text = `${r.status === 201 ? "Created" : "Done"}: ${row.resource_type}/${row.id}.`;
    return { fullUrl, response: { ...response, outcome: { resourceType: "OperationOutcome", issue: [{ severity: "information", code: "informational", details: { text } }] } } };
  }
  return { fullUrl, ...(r.resource ? { resource: r.resource } : {}), response };
}

/** A batch entry that failed: its status and an OperationOutcome saying why. */
export function failureEntry(err: ApiError, requestId: string | undefined): ResponseEntry {
  return { response: { status: statusLine(err.status), outcome: operationOutcome(err, requestId) } };
}

export interface ResponseBundle {
  resourceType: "Bundle";
  id: string;
  type: "transaction-response" | "batch-response";
  timestamp: string;
  entry?: ResponseEntry[];
}

export function responseBundle(type: ResponseBundle["type"], entries: ResponseEntry[], now: Date): ResponseBundle {
  // FHIR JSON has no empty arrays: an empty Bundle's answer has no `entry`.
  return { resourceType: "Bundle", id: crypto.randomUUID(), type, timestamp: now.toISOString(), ...(entries.length > 0 ? { entry: entries } : {}) };
}
