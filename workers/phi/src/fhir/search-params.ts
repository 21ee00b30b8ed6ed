import { ApiError } from "../../../../shared/errors";
import { dateInterval } from "./dates";

/**
 * Parsing of FHIR search parameters (https://hl7.org/fhir/R4/search.html) into plain
 * conditions. Pure: no keys, no storage. Unknown parameters are refused (the
 * `handling=strict` behaviour) so a typo never silently widens a search.
 */
export type ResourceType = "Patient" | "Observation";

export type Condition =
  | { kind: "exact"; param: string; value: string }
  | { kind: "range"; param: "date"; op: "ge" | "gt" | "le" | "lt"; instant: string };

export interface SearchQuery {
  conditions: Condition[];
  count: number;
}

const EXACT: Record<ResourceType, readonly string[]> = {
  Patient: ["family", "given", "birthdate", "identifier"],
  Observation: ["patient", "subject", "code"],
};
const MAX_VALUE = 256;
const MAX_CONDITIONS = 10;

function bad(detail: string): ApiError {
  return new ApiError(400, "invalid_search", detail);
}

/** `[eq|ge|gt|le|lt]<date>` to one or two range conditions on the stored instant. */
function dateConditions(raw: string): Condition[] {
  const m = /^(eq|ge|gt|le|lt)?(.+)$/.exec(raw);
  const op = m?.[1] ?? "eq";
  const iv = m?.[2] ? dateInterval(m[2]) : undefined;
  if (!iv) throw bad("The date parameter is not a FHIR date.");
  switch (op) {
    case "ge":
      return [{ kind: "range", param: "date", op: "ge", instant: iv.lo }];
    case "gt":
      return [{ kind: "range", param: "date", op: "gt", instant: iv.hi }];
    case "le":
      return [{ kind: "range", param: "date", op: "le", instant: iv.hi }];
    case "lt":
      return [{ kind: "range", param: "date", op: "lt", instant: iv.lo }];
    default:
      return [
        { kind: "range", param: "date", op: "ge", instant: iv.lo },
        { kind: "range", param: "date", op: "le", instant: iv.hi },
      ];
  }
}

/** Normalizes an exact parameter to the form its index token is computed from. */
function exactCondition(type: ResourceType, param: string, value: string): Condition {
  if (param === "birthdate") {
    const v = value.startsWith("eq") ? value.slice(2) : value;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(v) || !dateInterval(v)) throw bad("birthdate must be an exact date (YYYY-MM-DD).");
    return { kind: "exact", param, value: v };
  }
  if (param === "patient" || param === "subject") {
    const id = value.startsWith("Patient/") ? value.slice("Patient/".length) : value;
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw bad(`${param} must be a Patient id or Patient/<id>.`);
    return { kind: "exact", param: "patient", value: id };
  }
  if (param === "identifier" || (type === "Observation" && param === "code")) {
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

/** Reads FHIR search parameters (query string or `_search` form body). */
export function parseSearch(type: ResourceType, params: [string, string][], pageMax: number): SearchQuery {
  const conditions: Condition[] = [];
  let count = Math.min(20, pageMax);
  for (const [name, raw] of params) {
    if (raw.length > MAX_VALUE) throw bad("A search parameter value is too long.");
    if (name === "_count") {
      if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1) throw bad("_count must be a positive integer.");
      count = Math.min(Number(raw), pageMax);
      continue;
    }
    if (name === "_format" && /json/.test(raw)) continue;
    if (raw.trim() === "") throw bad("A search parameter is empty.");
    if (type === "Observation" && name === "date") conditions.push(...dateConditions(raw));
    else if (EXACT[type].includes(name)) conditions.push(exactCondition(type, name, raw));
    else throw bad(`Unknown or unsupported search parameter for ${type}.`);
  }
  if (conditions.length > MAX_CONDITIONS) throw bad("Too many search parameters.");
  return { conditions, count };
}
