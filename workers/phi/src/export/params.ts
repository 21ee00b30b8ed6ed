import { RESOURCE_TYPES, type ResourceType } from "../fhir/search-params";

/**
 * The kick-off request of a Bulk Data export (HL7 FHIR Bulk Data Access 2.0,
 * export.html#bulk-data-kick-off-request), checked as plain data: pure, so every
 * refusal is tested on its own. Parameters come from the query string, or from a
 * `Parameters` resource when the kick-off is a POST (both forms are in the spec).
 */
export interface ExportRequest {
  /** Resource types to export, in file order (Patient before Observation). */
  types: ResourceType[];
  /** Only resources whose current version was written after this instant (ISO, as given). */
  since: string | null;
}

export type ExportParse = { ok: true; value: ExportRequest } | { ok: false; code: string; detail: string };

/** `_outputFormat` values the spec requires a server to accept; all mean NDJSON. */
const OUTPUT_FORMATS = new Set(["application/fhir+ndjson", "application/ndjson", "ndjson"]);

/** A FHIR `instant` (R4 datatypes.html#instant): seconds and a zone are required. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Parameters of the spec this server does not offer: refused by name (the spec's default is strict handling). */
const NOT_OFFERED = new Set(["_typeFilter", "_elements", "patient", "includeAssociatedData", "_until", "organizeOutputBy", "allowPartialManifests"]);

/** `Prefer: respond-async` is what asks for the asynchronous pattern (R4 async.html); without it there is no export. */
export function wantsAsync(prefer: string | undefined): boolean {
  return (prefer ?? "").split(",").some((part) => part.split(";")[0]?.trim().toLowerCase() === "respond-async");
}

const fail = (code: string, detail: string): ExportParse => ({ ok: false, code, detail });

/** `params`: every (name, value) pair of the request, repeats included. `_format` is the FHIR format middleware's. */
export function parseExportParams(params: readonly (readonly [string, string])[]): ExportParse {
  const types = new Set<ResourceType>();
  let since: string | null = null;
  let format: string | null = null;
  for (const [name, raw] of params) {
    const value = raw.trim();
    if (name === "_format") continue;
    if (name === "_type") {
      for (const t of value.split(",").map((s) => s.trim())) {
        if (!(RESOURCE_TYPES as readonly string[]).includes(t)) {
          return fail("unsupported_type", `_type takes ${RESOURCE_TYPES.join(", ")} (comma-separated).`);
        }
        types.add(t as ResourceType);
      }
      continue;
    }
    if (name === "_since") {
      if (since !== null) return fail("invalid_since", "_since may be given once.");
      if (!INSTANT.test(value) || Number.isNaN(Date.parse(value))) {
        return fail("invalid_since", "_since must be a FHIR instant, e.g. 2026-01-01T00:00:00Z.");
      }
      since = new Date(value).toISOString();
      continue;
    }
    if (name === "_outputFormat") {
      if (format !== null) return fail("invalid_output_format", "_outputFormat may be given once.");
      if (!OUTPUT_FORMATS.has(value.toLowerCase())) {
        return fail("unsupported_output_format", "_outputFormat must be application/fhir+ndjson, application/ndjson or ndjson.");
      }
      format = value;
      continue;
    }
    if (NOT_OFFERED.has(name)) return fail("unsupported_parameter", `${name} is not supported by this server.`);
    return fail("unknown_parameter", "Unknown parameter; $export takes _type, _since and _outputFormat.");
  }
  // No _type: every type this server holds (export.html: "all supported resources").
  const chosen = types.size === 0 ? [...RESOURCE_TYPES] : RESOURCE_TYPES.filter((t) => types.has(t));
  return { ok: true, value: { types: chosen, since } };
}

/** A POST kick-off's body: a FHIR `Parameters` resource (valueString / valueInstant / valueCode). */
export function parametersBody(body: unknown): [string, string][] | null {
  if (typeof body !== "object" || body === null) return null;
  const b = body as { resourceType?: unknown; parameter?: unknown };
  if (b.resourceType !== "Parameters") return null;
  if (b.parameter === undefined) return [];
  if (!Array.isArray(b.parameter) || b.parameter.length > 50) return null;
  const out: [string, string][] = [];
  for (const p of b.parameter as unknown[]) {
    if (typeof p !== "object" || p === null) return null;
    const { name, ...rest } = p as Record<string, unknown>;
    const values = Object.entries(rest).filter(([k]) => k.startsWith("value"));
    const value = values[0]?.[1];
    if (typeof name !== "string" || values.length !== 1 || Object.keys(rest).length !== 1 || typeof value !== "string") return null;
    out.push([name, value]);
  }
  return out;
}
