import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TokenCondition } from "../src/fhir/index-tokens";
import type { SortOrder } from "../src/fhir/search-params";
import { noLiveMatch, pageQuery, type SearchPlan } from "../src/store/search-query";

/**
 * The search statements' query plans, as SQLite makes them here (D1's SQLite, no statistics: what a database gets
 * until something runs ANALYZE). Latency is measured by the bench (`bench/growth.mjs`: the first page of 1k, 10k
 * and 100k Patients), not here; this pins the plans that keep it flat: the per-row version subqueries seek the
 * resource's own versions by id, the page's rows find their heads by id, and the matches are read through the
 * index that serves the order (or the ids a blind-index condition picks), never the whole type per row.
 */
const TENANT = "ten_default";
const asOf = new Date().toISOString();
const family: TokenCondition = { kind: "exact", param: "family", token: "0".repeat(64) };
const lastUpdated: TokenCondition = { kind: "range", param: "_lastUpdated", op: "ge", instant: "2026-01-01T00:00:00.000Z" };
const birth: TokenCondition = { kind: "range", param: "date", op: "lt", instant: "2000-01-01T00:00:00.000Z" };

function plan(sort: SortOrder, conds: TokenCondition[], after: SearchPlan["after"] = null): SearchPlan {
  return { tenant: TENANT, type: "Patient", conds, sort, after, limit: 51, asOf, total: false, include: false, revinclude: false, revincludeMax: 0 };
}

async function explain(sql: string, binds: (string | number)[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
    .bind(...binds)
    .all<{ detail: string }>();
  return results.map((r) => r.detail);
}

/** What every plan of these statements must hold. */
function expectIndexed(details: string[]): void {
  // No table scan of resource_versions under any alias (a SCAN of the page CTE or the IN list is fine).
  expect(details.filter((d) => /^SCAN (v|w|h|x)\b/.test(d))).toEqual([]);
  // The version subqueries (w: as of the snapshot, x: the head) seek one resource's versions.
  for (const d of details.filter((d) => /^SEARCH (w|x)\b/.test(d))) expect(d).toMatch(/USING (COVERING )?INDEX resource_versions_version \(tenant_id=\? AND resource_type=\? AND id=\?\)/);
  expect(details.some((d) => /^SEARCH w\b/.test(d))).toBe(true);
}

describe("search query plans", () => {
  const after = { key: "2026-06-01T00:00:00.000Z", id: "00000000-0000-4000-8000-000000000000" };
  const cases: [string, SearchPlan, RegExp][] = [
    ["_id, all", plan("_id", []), /^SEARCH v USING INDEX resource_versions_version \(tenant_id=\? AND resource_type=\?\)$/],
    ["_id, all, a later page", plan("_id", [], after), /^SEARCH v USING INDEX resource_versions_version \(tenant_id=\? AND resource_type=\? AND id>\?\)$/],
    ["_lastUpdated, all", plan("_lastUpdated", []), /^SEARCH v USING INDEX resource_versions_updated /],
    ["_lastUpdated, all, a later page", plan("_lastUpdated", [], after), /^SEARCH v USING INDEX resource_versions_updated \(tenant_id=\? AND resource_type=\? AND \(last_updated,id\)>\(\?,\?\) AND last_updated<\?\)$/],
    ["-_lastUpdated, all, a later page", plan("-_lastUpdated", [], after), /^SEARCH v USING INDEX resource_versions_updated \(tenant_id=\? AND resource_type=\? AND \(last_updated,id\)<\(\?,\?\)\)$/],
    ["_lastUpdated, a _lastUpdated range", plan("_lastUpdated", [lastUpdated]), /^SEARCH v USING INDEX resource_versions_updated .*last_updated>\?/],
    ["_id, family=", plan("_id", [family]), /^SEARCH v USING INDEX resource_versions_version \(tenant_id=\? AND resource_type=\? AND id=\?\)$/],
    ["-_lastUpdated, family= and birthdate=lt", plan("-_lastUpdated", [family, birth]), /^SEARCH v USING INDEX resource_versions_version \(tenant_id=\? AND resource_type=\? AND id=\?\)$/],
  ];
  for (const [name, p, driving] of cases) {
    it(`${name}: the matches through ${driving.source.match(/resource_versions_\w+/)?.[0] ?? ""}, each version and head by id`, async () => {
      const q = pageQuery(p);
      const details = await explain(q.sql, q.binds);
      expectIndexed(details);
      expect(details.filter((d) => /^SEARCH v\b/.test(d))).toEqual([expect.stringMatching(driving)]);
      // The page drives the join: each of its rows finds its head by id.
      expect(details.filter((d) => /^SEARCH h\b/.test(d))).toEqual([expect.stringMatching(/resource_versions_version \(tenant_id=\? AND resource_type=\? AND id=\?\)/)]);
      // Without a blind-index condition the order comes from the index: nothing of the type is sorted.
      if (p.conds.every((c) => c.kind === "range" && c.param === "_lastUpdated")) {
        const cte = details.slice(0, details.findIndex((d) => /^SEARCH h\b/.test(d)));
        expect(cte.filter((d) => d.includes("TEMP B-TREE"))).toEqual([]);
      }
    });
  }

  it("a conditional create's guard finds a live match by the blind index, each candidate's versions by id", async () => {
    const guard = noLiveMatch(TENANT, "Patient", [family]);
    const details = await explain(`SELECT ${guard.sql}`, guard.binds);
    expectIndexed(details);
    expect(details.filter((d) => /^SEARCH v\b/.test(d))).toEqual([expect.stringMatching(/resource_versions_version \(tenant_id=\? AND resource_type=\? AND id=\?\)/)]);
  });
});
