import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { recordSuccess } from "../audit/middleware";
import type { PhiSettings } from "../config";
import { conditionTokens } from "../fhir/index-tokens";
import { parseSearch, type ResourceType } from "../fhir/search-params";
import { readHeads, searchIds } from "../store/resources";
import { openCursor, sealCursor, type PageState } from "./cursor";
import { BASE, presentVersion, type FhirResource } from "./present";

export interface SearchBundle {
  resourceType: "Bundle";
  type: "searchset";
  link: { relation: string; url: string }[];
  entry: { fullUrl: string; resource: FhirResource; search: { mode: "match" } }[];
}

/** Reads the page to serve: a sealed `_cursor` alone, or fresh search parameters. */
export async function pageFrom(
  cfg: PhiSettings,
  sub: string,
  type: ResourceType,
  params: [string, string][],
  nowSeconds: number,
): Promise<PageState> {
  const cursor = params.find(([k]) => k === "_cursor");
  if (cursor) {
    const rest = params.filter(([k]) => k !== "_cursor" && k !== "_format");
    if (rest.length > 0) throw new ApiError(400, "invalid_search", "_cursor cannot be combined with other parameters.");
    return openCursor(cfg.ring, sub, type, cursor[1], nowSeconds);
  }
  return { type, query: parseSearch(type, params, cfg.pageMax), after: "" };
}

/**
 * Runs one page of a search over blind indexes (no decryption to search), decrypts
 * only the matches, and records which patients were returned before returning them.
 */
export async function runSearch(c: Context<PhiEnv>, cfg: PhiSettings, page: PageState, now: Date): Promise<SearchBundle> {
  const conds = await conditionTokens(cfg.indexKey, page.type, page.query.conditions);
  const ids = await searchIds(c.env.DB, page.type, conds, page.after, page.query.count + 1);
  const pageIds = ids.slice(0, page.query.count);
  const rows = await readHeads(c.env.DB, page.type, pageIds);
  const entry = await Promise.all(
    rows.map(async (r) => ({
      fullUrl: `${BASE}/${page.type}/${r.id}`,
      resource: await presentVersion(cfg.ring, r),
      search: { mode: "match" as const },
    })),
  );
  const sub = c.get("principal").sub;
  const nowSeconds = Math.floor(now.getTime() / 1000);
  const link = [{ relation: "self", url: `${BASE}/${page.type}?_cursor=${await sealCursor(cfg.ring, sub, page, nowSeconds)}` }];
  const last = pageIds.at(-1);
  if (ids.length > page.query.count && last) {
    const next = await sealCursor(cfg.ring, sub, { ...page, after: last }, nowSeconds);
    link.push({ relation: "next", url: `${BASE}/${page.type}?_cursor=${next}` });
  }
  await recordSuccess(
    c,
    { action: "search", resourceType: page.type, resourceId: "", patientIds: rows.map((r) => r.patient_id) },
    now,
  );
  return { resourceType: "Bundle", type: "searchset", link, entry };
}
