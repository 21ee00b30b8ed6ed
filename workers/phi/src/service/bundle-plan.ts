import { ApiError } from "../../../../shared/errors";
import { issueForClient, type ZodIssueLike } from "../../../../shared/issues";
import type { BundleEntryInput } from "../fhir/bundle";
import { ObservationSchema, subjectPatientId, type Observation } from "../fhir/observation";
import { PatientSchema, type Patient } from "../fhir/patient";
import type { ResourceType } from "../fhir/search-params";

/**
 * Turning a Bundle's entries into planned operations, before any I/O (pure but for
 * the ids it assigns): the target of each entry's `request.url`, a server id for each
 * create, `urn:uuid:` placeholders mapped to `Type/id` and rewritten in every resource
 * (R4 bundle.html#references), each resource validated against its schema afterwards.
 * Failures are ApiErrors naming the entry (`Bundle.entry[i]`), never a value.
 */
export type PlannedMethod = "GET" | "POST" | "PUT" | "DELETE";

export interface PlannedEntry {
  /** Position in the Bundle as posted. */
  index: number;
  method: PlannedMethod;
  type: ResourceType;
  /** The server id: assigned for a create, from the URL otherwise. */
  id: string;
  /** The entry's `urn:uuid:` fullUrl, when it has one. */
  placeholder?: string;
  raw?: Record<string, unknown>;
  ifMatch?: string;
  ifNoneExist?: string;
}

export type ValidResource = { type: "Patient"; body: Patient } | { type: "Observation"; body: Observation; subject: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const URN = "urn:uuid:";

/** An error about entry `index`, with its position as an OperationOutcome expression. */
export function entryError(index: number, status: number, code: string, detail: string, errors?: { path: string; code?: string; message?: string }[]): ApiError {
  const where = `Bundle.entry[${index}]`;
  return new ApiError(status, code, `Entry ${index}: ${detail}`, {
    extra: { errors: errors?.map((e) => ({ ...e, path: `${where}.${e.path}` })) ?? [{ path: where, code: "custom", message: detail }] },
  });
}

/** An entry's `request.url` relative to the base: an absolute URL on the base loses it, anything else is as sent. */
export function relativeUrl(url: string, base: string): string {
  return url.startsWith(`${base}/`) ? url.slice(base.length + 1) : url;
}

/** `Patient`, `Observation/abc` (relative to the base, or absolute on it) -> type and id. */
function parseUrl(index: number, url: string, base: string): { type: ResourceType; id?: string } {
  const rel = relativeUrl(url, base);
  if (rel.includes("?") || rel.includes("#")) throw entryError(index, 400, "unsupported_entry", "Searches and conditional operations in request.url are not supported in a Bundle.");
  const [type, id, more] = rel.split("/");
  if (type !== "Patient" && type !== "Observation") throw entryError(index, 404, "unknown_resource_type", "request.url must name Patient or Observation.");
  if (more !== undefined) throw entryError(index, 400, "unsupported_entry", "request.url must be Type or Type/id.");
  if (id !== undefined && !ID.test(id)) throw entryError(index, 400, "invalid_id", "request.url holds an invalid id.");
  return id === undefined ? { type } : { type, id };
}

/** Step one: what each entry asks for, with server ids assigned to creates; throws on the first bad entry. */
export function planEntry(index: number, e: BundleEntryInput, base: string): PlannedEntry {
  const { method, url } = e.request;
  if (method === "HEAD" || method === "PATCH") throw entryError(index, 405, "method_not_allowed", `${method} is not supported in a Bundle.`);
  if (e.request.ifNoneMatch !== undefined || e.request.ifModifiedSince !== undefined) {
    throw entryError(index, 400, "unsupported_entry", "ifNoneMatch and ifModifiedSince are not supported.");
  }
  if (e.request.ifMatch !== undefined && method !== "PUT" && method !== "DELETE") throw entryError(index, 400, "unsupported_entry", "ifMatch applies to PUT and DELETE only.");
  if (e.request.ifNoneExist !== undefined && method !== "POST") throw entryError(index, 400, "unsupported_entry", "ifNoneExist applies to POST only.");
  const target = parseUrl(index, url, base);
  const writes = method === "POST" || method === "PUT";
  if (writes && !e.resource) throw entryError(index, 400, "missing_resource", `A ${method} entry needs a resource.`);
  if (!writes && e.resource) throw entryError(index, 400, "unexpected_resource", `A ${method} entry takes no resource.`);
  if (e.resource && e.resource.resourceType !== target.type) throw entryError(index, 400, "type_mismatch", "resource.resourceType must match request.url.");
  let placeholder: string | undefined;
  if (e.fullUrl?.startsWith(URN)) {
    if (!UUID.test(e.fullUrl.slice(URN.length))) throw entryError(index, 400, "invalid_fullurl", "A urn:uuid: fullUrl must hold a UUID.");
    placeholder = e.fullUrl.toLowerCase();
  }
  const base0 = { index, method, type: target.type, ...(placeholder ? { placeholder } : {}), ...(e.resource ? { raw: e.resource } : {}) };
  if (method === "POST") {
    if (target.id !== undefined) throw entryError(index, 400, "unsupported_entry", "POST goes to the type (Patient, Observation), not to an id.");
    if (e.request.ifNoneExist !== undefined && target.type !== "Patient") throw entryError(index, 400, "unsupported_entry", "Conditional create is offered for Patient only.");
    // The server assigns ids (FHIR create ignores a client id).
    return { ...base0, id: crypto.randomUUID(), ...(e.request.ifNoneExist !== undefined ? { ifNoneExist: e.request.ifNoneExist } : {}) };
  }
  if (target.id === undefined) throw entryError(index, 400, "unsupported_entry", `${method} needs request.url Type/id.`);
  if (method !== "GET" && target.type !== "Patient") throw entryError(index, 405, "method_not_allowed", `${method} is not offered for ${target.type}.`);
  if (method === "PUT" && e.resource?.id !== target.id) throw entryError(index, 400, "id_mismatch", "The resource id must equal the id in request.url.");
  return { ...base0, id: target.id, ...(e.request.ifMatch !== undefined ? { ifMatch: e.request.ifMatch } : {}) };
}

/**
 * Placeholders -> `Type/id`. Transaction entries may refer to each other; FHIR forbids
 * interdependencies in a batch, so a batch passes an empty map (every placeholder unresolved).
 * A fullUrl used twice fails the Bundle (R4 bundle.html#bundle-unique).
 */
export function placeholderMap(entries: readonly PlannedEntry[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const p of entries) {
    if (!p.placeholder) continue;
    if (map.has(p.placeholder)) throw entryError(p.index, 400, "duplicate_fullurl", "Another entry has the same fullUrl.");
    map.set(p.placeholder, `${p.type}/${p.id}`);
  }
  return map;
}

/**
 * How deep an entry's resource may nest (objects and arrays) before its schema sees it. The schemas accept far
 * less (a valid Patient or Observation nests about ten levels: extensions two), so a deeper resource is invalid
 * anyway; the bound only keeps `rewrite` from recursing through whatever JSON.parse accepted (a 1 MiB body holds
 * ~500,000 levels of `[[[...]]]`, a stack overflow), and answers it as the schema would: the entry's 400.
 */
export const MAX_RESOURCE_DEPTH = 64;

/** A copy of `value` with every `reference` that is a placeholder replaced; throws on one not in `map`. */
function rewrite(index: number, value: unknown, map: ReadonlyMap<string, string>, depth = 0): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (depth >= MAX_RESOURCE_DEPTH) {
    throw entryError(index, 400, "invalid_request", "The resource is not valid.", [
      { path: "resource", code: "too_deep", message: `The resource nests deeper than ${MAX_RESOURCE_DEPTH} levels.` },
    ]);
  }
  if (Array.isArray(value)) return value.map((v) => rewrite(index, v, map, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "reference" && typeof v === "string" && v.toLowerCase().startsWith(URN)) {
      const resolved = map.get(v.toLowerCase());
      if (!resolved) throw entryError(index, 422, "unresolved_reference", "A urn:uuid: reference names no entry of this transaction.");
      out[k] = resolved;
    } else {
      out[k] = rewrite(index, v, map, depth + 1);
    }
  }
  return out;
}

/** Step two: the entry's resource with placeholders resolved, validated against its schema (400 naming element paths). */
export function resolveResource(p: PlannedEntry, map: ReadonlyMap<string, string>): ValidResource | undefined {
  if (!p.raw) return undefined;
  const body = rewrite(p.index, p.raw, map);
  // The same masking as a resource sent alone (shared/issues.ts): a key the client chose is named only when identifier-like.
  const issues = (e: { issues: ZodIssueLike[] }) => e.issues.slice(0, 20).map((i) => issueForClient({ ...i, path: ["resource", ...i.path] }, undefined));
  if (p.type === "Patient") {
    const r = PatientSchema.safeParse(body);
    if (!r.success) throw entryError(p.index, 400, "invalid_request", "The resource is not valid.", issues(r.error));
    return { type: "Patient", body: r.data };
  }
  const r = ObservationSchema.safeParse(body);
  if (!r.success) throw entryError(p.index, 400, "invalid_request", "The resource is not valid.", issues(r.error));
  return { type: "Observation", body: r.data, subject: subjectPatientId(r.data) };
}

/** `Type/id` of what an entry reads or changes (a create changes nothing that exists yet). */
export function targetKey(p: Pick<PlannedEntry, "type" | "id">): string {
  return `${p.type}/${p.id}`;
}

/** FHIR: one resource at most once per Bundle among the entries that change it (R4 http.html#trules). */
export function refuseDuplicateTargets(entries: readonly PlannedEntry[]): Map<number, ApiError> {
  const seen = new Set<string>();
  const errors = new Map<number, ApiError>();
  for (const p of entries) {
    if (p.method === "GET" || p.method === "POST") continue;
    const key = targetKey(p);
    if (seen.has(key)) errors.set(p.index, entryError(p.index, 400, "duplicate_target", "Another entry of this Bundle changes the same resource."));
    seen.add(key);
  }
  return errors;
}
