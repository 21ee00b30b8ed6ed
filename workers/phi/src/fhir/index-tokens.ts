import { blindIndex } from "../../../../shared/crypto";
import { dateInterval } from "./dates";
import type { Observation } from "./observation";
import { subjectPatientId } from "./observation";
import type { Patient } from "./patient";
import type { Condition, RangeOp, ResourceType } from "./search-params";

/** One search_index row's content. */
export interface IndexEntry {
  param: string;
  token: string;
}

/**
 * Parameters whose token is stored in plaintext: they are not direct identifiers
 * (a server-assigned random id, an observation instant) and need equality / range
 * comparison. Everything else is a keyed HMAC blind index.
 */
const PLAIN = new Set(["_id", "patient", "date"]);

/** The value -> token mapping shared by indexing and searching, so both always agree. */
export function conditionToken(indexKey: string, type: ResourceType, param: string, value: string): Promise<string> {
  if (PLAIN.has(param)) return Promise.resolve(value);
  // The field label binds the token to resource type and parameter: equal values in
  // two fields give unrelated tokens.
  return blindIndex(indexKey, `${type}.${param}`, value);
}

function tokenPairs(param: string, values: { system?: string; value?: string; code?: string }[]): [string, string][] {
  const out: [string, string][] = [];
  for (const v of values) {
    const val = v.value ?? v.code;
    if (!val) continue;
    out.push([`${param}-value`, val]);
    if (v.system) out.push([param, `${v.system}|${val}`]);
  }
  return out;
}

/** Search values of a Patient version (names, birth date, identifiers). */
export function patientValues(p: Patient, id: string): [string, string][] {
  const out: [string, string][] = [["_id", id]];
  for (const n of p.name ?? []) {
    if (n.family) out.push(["family", n.family]);
    for (const g of n.given ?? []) out.push(["given", g]);
  }
  if (p.birthDate && /^\d{4}-\d{2}-\d{2}$/.test(p.birthDate)) out.push(["birthdate", p.birthDate]);
  out.push(...tokenPairs("identifier", p.identifier ?? []));
  return out;
}

/** The instant an Observation is indexed under for `date` search: the start of its effective[x]. */
export function observationInstant(o: Observation): string | undefined {
  const v = o.effectiveInstant ?? o.effectiveDateTime ?? o.effectivePeriod?.start;
  return v ? dateInterval(v)?.lo : undefined;
}

export function observationValues(o: Observation, id: string): [string, string][] {
  const out: [string, string][] = [
    ["_id", id],
    ["patient", subjectPatientId(o)],
  ];
  out.push(...tokenPairs("code", o.code.coding ?? []));
  const at = observationInstant(o);
  if (at) out.push(["date", at]);
  return out;
}

/** Tokens for a resource's values, without duplicates (the index primary key forbids them). */
export async function indexEntries(indexKey: string, type: ResourceType, values: [string, string][]): Promise<IndexEntry[]> {
  const seen = new Set<string>();
  const out: IndexEntry[] = [];
  for (const [param, value] of values) {
    const token = await conditionToken(indexKey, type, param, value);
    const key = `${param}\u0000${token}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ param, token });
  }
  return out;
}

export type TokenCondition =
  | { kind: "exact"; param: string; token: string }
  | { kind: "range"; param: "date" | "_lastUpdated"; op: RangeOp; instant: string };

export async function conditionTokens(indexKey: string, type: ResourceType, conds: Condition[]): Promise<TokenCondition[]> {
  return Promise.all(
    conds.map(async (c): Promise<TokenCondition> =>
      c.kind === "exact" ? { kind: "exact", param: c.param, token: await conditionToken(indexKey, type, c.param, c.value) } : c,
    ),
  );
}
