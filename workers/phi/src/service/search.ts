import { scopeOf } from "../store/scope";
import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { recordSuccess } from "../audit/middleware";
import type { PhiSettings } from "../config";
import { conditionTokens } from "../fhir/index-tokens";
import { parseSearch, type ResourceType } from "../fhir/search-params";
import type { VersionRow } from "../store/resources";
import { searchPage } from "../store/search-query";
import { publicBase } from "./base-url";
import { openCursor, sealCursor, type PageState } from "./cursor";
import { presentVersion, type FhirResource } from "./present";

type Mode = "match" | "include" | "outcome";
export interface SearchBundle {
  resourceType: "Bundle";
  type: "searchset";
  total?: number;
  link: { relation: string; url: string }[];
  entry?: { fullUrl?: string; resource: FhirResource | Record<string, unknown>; search: { mode: Mode } }[];
}

/** Revincluded Observations per page at most: a patient's whole chart is an export, not a search page. */
const REVINCLUDE_MAX = 500;

/**
 * Reads the page to serve: a sealed `_cursor` (with `_format` and `_count` at most), or fresh search parameters.
 * `_count` beside a cursor sets the size of this page and the next ones: clients re-issue a `next` link's query with
 * their own `_count` (MedplumClient's searchResourcePages adds `_count=1000` when the link has none), and keyset
 * paging continues from the same place whatever the page size.
 */
export async function pageFrom(
  cfg: PhiSettings,
  sub: string,
  type: ResourceType,
  params: [string, string][],
  now: Date,
): Promise<PageState> {
  const cursor = params.find(([k]) => k === "_cursor");
  if (cursor) {
    const rest = params.filter(([k]) => k !== "_cursor" && k !== "_format" && k !== "_count");
    if (rest.length > 0) throw new ApiError(400, "invalid_search", "_cursor cannot be combined with other parameters.");
    const counts = params.filter(([k]) => k === "_count").map(([, v]) => v);
    const count = counts[0];
    if (counts.length > 1 || (count !== undefined && !/^[1-9]\d{0,8}$/.test(count))) {
      throw new ApiError(400, "invalid_search", "_count beside _cursor must be one positive integer.");
    }
    const page = await openCursor(cfg.ring, sub, type, cursor[1], Math.floor(now.getTime() / 1000));
    return count === undefined ? page : { ...page, query: { ...page.query, count: Math.min(Number(count), cfg.pageMax) } };
  }
  return { type, query: parseSearch(type, params, cfg.pageMax), after: null, asOf: now.toISOString() };
}

async function entries(cfg: PhiSettings, base: string, rows: VersionRow[], mode: Mode) {
  return Promise.all(
    rows
      // A resource deleted after the snapshot is left out of its page.
      .filter((r) => !r.deleted)
      .map(async (r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: await presentVersion(cfg.bodies, r), search: { mode } })),
  );
}

/**
 * Runs one page of a search over blind indexes (no decryption to search) in one D1
 * batch, decrypts only what it returns, and records which patients were returned
 * before returning them. Links are absolute and carry only the sealed cursor.
 */
export async function runSearch(c: Context<PhiEnv>, cfg: PhiSettings, page: PageState, now: Date): Promise<SearchBundle> {
  const q = page.query;
  const count = q.summaryCount ? 0 : q.count;
  const found = await searchPage(scopeOf(c), {
    type: page.type,
    conds: await conditionTokens(cfg.indexKey, page.type, q.conditions),
    sort: q.sort,
    after: page.after,
    limit: count === 0 ? 0 : count + 1,
    asOf: page.asOf,
    // A count-only page has no free total: counting is all it does (also for a cursor sealed before that rule).
    total: q.total || count === 0,
    include: q.include && count > 0,
    revinclude: q.revinclude && count > 0,
    revincludeMax: REVINCLUDE_MAX,
  });
  const base = publicBase(c);
  const pageRows = found.page.slice(0, count);
  const ids = new Set(pageRows.map((r) => r.id));
  const patients = new Set(pageRows.map((r) => r.patient_id));
  const included = found.included.filter((r) => patients.has(r.id));
  const revincluded = found.revincluded.filter((r) => ids.has(r.patient_id));
  const entry: NonNullable<SearchBundle["entry"]> = [
    ...(await entries(cfg, base, pageRows, "match")),
    ...(await entries(cfg, base, included, "include")),
    ...(await entries(cfg, base, revincluded.slice(0, REVINCLUDE_MAX), "include")),
  ];
  if (revincluded.length > REVINCLUDE_MAX) {
    entry.push({
      resource: {
        resourceType: "OperationOutcome",
        issue: [{ severity: "warning", code: "too-costly", details: { text: `Only the first ${REVINCLUDE_MAX} revincluded Observations are returned.` } }],
      },
      search: { mode: "outcome" },
    });
  }
  const sub = c.get("principal").sub;
  const nowSeconds = Math.floor(now.getTime() / 1000);
  // `_count` in the links too, so a client that re-issues their query keeps the page size it asked for.
  const pageUrl = (sealed: string) => `${base}/${page.type}?_cursor=${sealed}${count > 0 ? `&_count=${count}` : ""}`;
  const link = [{ relation: "self", url: pageUrl(await sealCursor(cfg.ring, sub, page, nowSeconds)) }];
  const last = pageRows.at(-1);
  const more = found.page.length > count && last !== undefined;
  if (more) {
    const next = await sealCursor(cfg.ring, sub, { ...page, after: { key: last.sort_key, id: last.id } }, nowSeconds);
    link.push({ relation: "next", url: pageUrl(next) });
  }
  await recordSuccess(
    c,
    {
      action: "search",
      resourceType: page.type,
      resourceId: "",
      patientIds: [...pageRows, ...included, ...revincluded].map((r) => r.patient_id),
    },
    now,
  );
  // The total is free when the first page holds every match; otherwise only on request (_total=accurate).
  const total = found.total ?? (page.after === null && !more ? pageRows.length : undefined);
  return {
    resourceType: "Bundle",
    type: "searchset",
    ...(total !== undefined ? { total } : {}),
    link,
    // FHIR JSON has no empty arrays: a page without entries has no `entry`.
    ...(entry.length > 0 ? { entry } : {}),
  };
}
