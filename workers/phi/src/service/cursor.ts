import { z } from "zod";
import { decryptField, encryptField, type Keyring } from "../../../../shared/crypto";
import { ApiError } from "../../../../shared/errors";
import type { Condition, ResourceType, SearchQuery } from "../fhir/search-params";

/**
 * Search paging cursors. A `next` link must not carry the search values (names,
 * identifiers, birth dates) in its URL, where proxies and traces record them
 * (DESIGN "no identifiers in URLs"), so the whole query is sealed into an opaque
 * AES-GCM cursor, bound to the caller (`sub` in the AAD) and short-lived.
 */
const CURSOR_TTL_SECONDS = 3600;

const Range = z.object({
  kind: z.literal("range"),
  param: z.enum(["date", "_lastUpdated"]),
  op: z.enum(["ge", "gt", "le", "lt"]),
  instant: z.string(),
});
const CursorBody = z.object({
  t: z.enum(["Patient", "Observation"]),
  q: z.array(z.union([z.object({ kind: z.literal("exact"), param: z.string(), value: z.string() }), Range])),
  n: z.number().int().min(0),
  s: z.enum(["_id", "_lastUpdated", "-_lastUpdated"]),
  /** Options: total, include, revinclude. */
  o: z.object({ t: z.boolean(), i: z.boolean(), r: z.boolean() }),
  /** The snapshot instant of the first page, and the last (sort key, id) served. */
  at: z.string(),
  a: z.tuple([z.string(), z.string()]).nullable(),
  e: z.number().int(),
});

export interface PageState {
  type: ResourceType;
  query: SearchQuery;
  after: { key: string; id: string } | null;
  /** The snapshot every page of this search reads (ISO instant of the first page). */
  asOf: string;
}

function aad(sub: string): string {
  return `phi-search-cursor/${sub}`;
}

export function sealCursor(ring: Keyring, sub: string, page: PageState, nowSeconds: number): Promise<string> {
  const body: z.infer<typeof CursorBody> = {
    t: page.type,
    q: page.query.conditions,
    n: page.query.count,
    s: page.query.sort,
    o: { t: page.query.total, i: page.query.include, r: page.query.revinclude },
    at: page.asOf,
    a: page.after ? [page.after.key, page.after.id] : null,
    e: nowSeconds + CURSOR_TTL_SECONDS,
  };
  return encryptField(ring, JSON.stringify(body), aad(sub));
}

const invalid = () => new ApiError(400, "invalid_cursor", "The paging cursor is invalid or has expired.");

export async function openCursor(ring: Keyring, sub: string, type: ResourceType, sealed: string, nowSeconds: number): Promise<PageState> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await decryptField(ring, sealed, aad(sub)));
  } catch {
    throw invalid();
  }
  const r = CursorBody.safeParse(parsed);
  if (!r.success || r.data.t !== type || r.data.e < nowSeconds) throw invalid();
  const d = r.data;
  const conditions: Condition[] = d.q;
  return {
    type,
    query: { conditions, count: d.n, sort: d.s, total: d.o.t, summaryCount: false, include: d.o.i, revinclude: d.o.r },
    after: d.a ? { key: d.a[0], id: d.a[1] } : null,
    asOf: d.at,
  };
}
