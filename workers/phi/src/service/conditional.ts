import { ApiError } from "../../../../shared/errors";
import type { PhiSettings } from "../config";
import { conditionTokens, type TokenCondition } from "../fhir/index-tokens";
import { parseSearch } from "../fhir/search-params";
import type { VersionRow } from "../store/resources";
import type { Scope } from "../store/scope";
import { searchPage } from "../store/search-query";

/**
 * Live Patients matching FHIR conditional criteria (`If-None-Exist` on create, the query
 * string of a conditional update), at most two: enough to tell none, one and several.
 * Same parsing and blind indexes as search; nothing is decrypted to match.
 */
export async function conditionalMatches(scope: Scope, cfg: PhiSettings, criteria: string, conds?: TokenCondition[]): Promise<VersionRow[]> {
  const found = await searchPage(scope, {
    type: "Patient",
    conds: conds ?? (await conditionalCriteria(cfg, criteria)),
    sort: "_id",
    after: null,
    limit: 2,
    asOf: new Date().toISOString(),
    total: false,
    include: false,
    revinclude: false,
    revincludeMax: 0,
  });
  return found.page.filter((r) => !r.deleted);
}

/** The blind-index conditions of conditional criteria (400 when they name no search parameter). */
export async function conditionalCriteria(cfg: PhiSettings, criteria: string): Promise<TokenCondition[]> {
  const params = [...new URLSearchParams(criteria).entries()].filter(([k]) => k !== "_count");
  const query = parseSearch("Patient", params, 2);
  if (query.conditions.length === 0) throw new ApiError(400, "invalid_search", "Conditional criteria need at least one search parameter.");
  return conditionTokens(cfg.indexKey, "Patient", query.conditions);
}
