import { ApiError } from "../../../../shared/errors";
import type { PhiSettings } from "../config";
import { conditionTokens } from "../fhir/index-tokens";
import { parseSearch } from "../fhir/search-params";
import { readHeads, searchIds, type VersionRow } from "../store/resources";

/**
 * Live Patients matching FHIR conditional-create criteria (`If-None-Exist`, a
 * search query string), at most two: enough to tell none, one and several.
 * Same parsing and blind indexes as search; nothing is decrypted to match.
 */
export async function conditionalMatches(db: D1Database, cfg: PhiSettings, criteria: string): Promise<VersionRow[]> {
  const params = [...new URLSearchParams(criteria).entries()].filter(([k]) => k !== "_count");
  if (params.length === 0) throw new ApiError(400, "invalid_search", "If-None-Exist needs at least one search parameter.");
  const query = parseSearch("Patient", params, 2);
  const ids = await searchIds(db, "Patient", await conditionTokens(cfg.indexKey, "Patient", query.conditions), "", 2);
  return readHeads(db, "Patient", ids);
}
