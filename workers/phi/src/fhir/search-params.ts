import { ApiError } from "../../../../shared/errors";
import { dateInterval } from "./dates";
import { acceptableFormat } from "./format";

/**
 * Parsing of FHIR search parameters (https://hl7.org/fhir/R4/search.html) into plain
 * conditions and result options. Pure: no keys, no storage. Unknown parameters are
 * refused (the `handling=strict` behaviour) so a typo never silently widens a search.
 * SEARCH_PARAMS is the one list of what is implemented: the parser, the routes' query
 * schemas and the CapabilityStatement are all read from it.
 */
export type ResourceType = "Patient" | "Observation";
export const RESOURCE_TYPES: readonly ResourceType[] = ["Patient", "Observation"];

export type RangeOp = "ge" | "gt" | "le" | "lt";
export type Condition =
  | { kind: "exact"; param: string; value: string }
  | { kind: "range"; param: "date" | "_lastUpdated"; op: RangeOp; instant: string };

export type SortOrder = "_id" | "_lastUpdated" | "-_lastUpdated";

export interface SearchQuery {
  conditions: Condition[];
  /** Entries per page; 0 asks for the total only (as `_summary=count` does). */
  count: number;
  sort: SortOrder;
  /** `_total=accurate` or `_summary=count`: count every match (one more statement in the batch). */
  total: boolean;
  summaryCount: boolean;
  /** `_include=Observation:patient` (Observation search) / `_revinclude=Observation:patient` (Patient search). */
  include: boolean;
  revinclude: boolean;
}

export interface SearchParamDef {
  name: string;
  type: "string" | "token" | "date" | "reference";
  documentation: string;
}

const LAST_UPDATED: SearchParamDef = {
  name: "_lastUpdated",
  type: "date",
  documentation: "When the current version was written; prefixes eq (default), ge, gt, le, lt.",
};
const ID: SearchParamDef = { name: "_id", type: "token", documentation: "The server-assigned id." };

export const SEARCH_PARAMS: Record<ResourceType, readonly SearchParamDef[]> = {
  Patient: [
    ID,
    LAST_UPDATED,
    { name: "family", type: "string", documentation: "Exact match after normalization (NFKC, trimmed, case-folded); no prefix match." },
    { name: "given", type: "string", documentation: "Exact match after normalization (NFKC, trimmed, case-folded); no prefix match." },
    { name: "birthdate", type: "date", documentation: "An exact date YYYY-MM-DD (eq only)." },
    { name: "identifier", type: "token", documentation: "system|value, |value or value." },
  ],
  Observation: [
    ID,
    LAST_UPDATED,
    { name: "patient", type: "reference", documentation: "Patient/<id> or <id>." },
    { name: "subject", type: "reference", documentation: "Patient/<id> or <id> (Patient subjects only)." },
    { name: "code", type: "token", documentation: "system|code, |code or code." },
    { name: "date", type: "date", documentation: "Start of effective[x]; prefixes eq (default), ge, gt, le, lt; no zone = UTC." },
  ],
};

/** The one include each way: an Observation's subject Patient. */
export const INCLUDES: Record<ResourceType, { include: readonly string[]; revinclude: readonly string[] }> = {
  Patient: { include: [], revinclude: ["Observation:patient"] },
  Observation: { include: ["Observation:patient"], revinclude: [] },
};

/** Result parameters every search takes besides the search parameters. */
export const RESULT_PARAMS = ["_count", "_sort", "_total", "_summary", "_include", "_revinclude", "_format"] as const;

const DEFAULT_COUNT = 20;
const MAX_VALUE = 256;
const MAX_CONDITIONS = 10;

function bad(detail: string): ApiError {
  return new ApiError(400, "invalid_search", detail);
}

/** `[eq|ge|gt|le|lt]<date>` to one or two range conditions. */
function rangeConditions(param: "date" | "_lastUpdated", raw: string): Condition[] {
  const m = /^(eq|ge|gt|le|lt)?(.+)$/.exec(raw);
  const op = m?.[1] ?? "eq";
  const iv = m?.[2] ? dateInterval(m[2]) : undefined;
  if (!iv) throw bad(`The ${param} parameter is not a FHIR date.`);
  const at = (o: RangeOp, instant: string): Condition => ({ kind: "range", param, op: o, instant });
  switch (op) {
    case "ge":
      return [at("ge", iv.lo)];
    case "gt":
      return [at("gt", iv.hi)];
    case "le":
      return [at("le", iv.hi)];
    case "lt":
      return [at("lt", iv.lo)];
    default:
      return [at("ge", iv.lo), at("le", iv.hi)];
  }
}

/** Normalizes an exact parameter to the form its index token is computed from. */
function exactCondition(param: string, value: string): Condition {
  if (param === "birthdate") {
    const v = value.startsWith("eq") ? value.slice(2) : value;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v) || !dateInterval(v)) throw bad("birthdate must be an exact date (YYYY-MM-DD).");
    return { kind: "exact", param, value: v };
  }
  if (param === "patient" || param === "subject" || param === "_id") {
    const id = param !== "_id" && value.startsWith("Patient/") ? value.slice("Patient/".length) : value;
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw bad(`${param} must be a ${param === "_id" ? "" : "Patient "}id.`);
    return { kind: "exact", param: param === "_id" ? "_id" : "patient", value: id };
  }
  if (param === "identifier" || param === "code") {
    // token search: `system|value`, `|value` (no system) or `value` (any system).
    const bar = value.indexOf("|");
    if (bar < 0) return { kind: "exact", param: `${param}-value`, value };
    const system = value.slice(0, bar);
    const code = value.slice(bar + 1);
    if (!code) throw bad(`${param} needs a value after the bar.`);
    return system ? { kind: "exact", param, value: `${system}|${code}` } : { kind: "exact", param: `${param}-value`, value: code };
  }
  return { kind: "exact", param, value };
}

function resultParam(type: ResourceType, q: SearchQuery, name: string, raw: string, pageMax: number): void {
  switch (name) {
    case "_count":
      // Above the maximum is capped, not refused (R4 search.html#count: the server may return fewer).
      if (!/^\d{1,9}$/.test(raw)) throw bad("_count must be a non-negative integer.");
      q.count = Math.min(Number(raw), pageMax);
      return;
    case "_sort":
      if (raw !== "_lastUpdated" && raw !== "-_lastUpdated" && raw !== "_id") throw bad("_sort supports _lastUpdated, -_lastUpdated and _id.");
      q.sort = raw;
      return;
    case "_total":
      if (raw !== "none" && raw !== "estimate" && raw !== "accurate") throw bad("_total must be none, estimate or accurate.");
      q.total = raw === "accurate";
      return;
    case "_summary":
      if (raw !== "count" && raw !== "false") throw bad("_summary supports count and false.");
      q.summaryCount = raw === "count";
      return;
    case "_include":
    case "_revinclude": {
      const allowed = INCLUDES[type][name === "_include" ? "include" : "revinclude"];
      if (!allowed.includes(raw)) throw bad(`${name} supports ${allowed.join(", ") || "nothing"} on ${type}.`);
      if (name === "_include") q.include = true;
      else q.revinclude = true;
      return;
    }
    default:
      if (!acceptableFormat(raw)) throw new ApiError(406, "unsupported_format", "_format must be json, application/fhir+json or application/json.");
  }
}

/** Reads FHIR search parameters (query string or `_search` form body). */
export function parseSearch(type: ResourceType, params: [string, string][], pageMax: number): SearchQuery {
  const q: SearchQuery = {
    conditions: [],
    count: Math.min(DEFAULT_COUNT, pageMax),
    sort: "_id",
    total: false,
    summaryCount: false,
    include: false,
    revinclude: false,
  };
  const known = new Set(SEARCH_PARAMS[type].map((p) => p.name));
  for (const [name, raw] of params) {
    if (raw.length > MAX_VALUE) throw bad("A search parameter value is too long.");
    if ((RESULT_PARAMS as readonly string[]).includes(name)) {
      resultParam(type, q, name, raw, pageMax);
      continue;
    }
    if (raw.trim() === "") throw bad("A search parameter is empty.");
    if (!known.has(name)) throw bad(`Unknown or unsupported search parameter for ${type}.`);
    if (name === "date" || name === "_lastUpdated") q.conditions.push(...rangeConditions(name, raw));
    else q.conditions.push(exactCondition(name, raw));
  }
  if (q.conditions.length > MAX_CONDITIONS) throw bad("Too many search parameters.");
  // A count-only search (`_count=0`, `_summary=count`) answers the total, whatever `_total` says and wherever it is.
  if (q.count === 0 || q.summaryCount) q.total = true;
  return q;
}
