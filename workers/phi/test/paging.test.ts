import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { auditRows, call, createPatient, expectValidFhir, form, json, patient } from "./helpers";

interface Entry {
  fullUrl?: string;
  resource: Record<string, unknown> & { id: string; resourceType: string; meta?: { lastUpdated: string } };
  search: { mode: string };
}
interface Bundle {
  resourceType: string;
  type: string;
  total?: number;
  link: { relation: string; url: string }[];
  entry?: Entry[];
}

async function get(path: string): Promise<Bundle> {
  const res = await call(path);
  const body = await json<Bundle>(res);
  expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(200);
  await expectValidFhir(body);
  return body;
}

const nextOf = (b: Bundle) => b.link.find((l) => l.relation === "next")?.url;

/** Follows `next` links (as a client does: GET on the absolute URL) and returns every page. */
async function allPages(first: Bundle, between: (pageNo: number, served: Bundle[]) => Promise<void> = async () => {}): Promise<Bundle[]> {
  const pages = [first];
  for (let url = nextOf(first), n = 1; url; n++) {
    // A search that keeps serving resources again (unstable paging) never ends.
    expect(n, "pages").toBeLessThan(40);
    await between(n, pages);
    const page = await get(url);
    pages.push(page);
    url = nextOf(page);
  }
  return pages;
}

const matches = (pages: Bundle[]) => pages.flatMap((p) => (p.entry ?? []).filter((e) => e.search.mode === "match"));

describe("searchset Bundles clients can page", () => {
  it("absolute self and next links; a next from POST _search is a working GET; _count above the maximum is capped", async () => {
    for (let i = 0; i < 5; i++) await createPatient(patient("Linkwell", `L${i}`));
    const res = await call("/Patient/_search", form({ family: "Linkwell", _count: "2" }));
    expect(res.status).toBe(200);
    const first = await json<Bundle>(res);
    await expectValidFhir(first);
    expect(first.link.find((l) => l.relation === "self")?.url).toMatch(/^https:\/\/phi\.internal\/v1\/phi\/Patient\?_cursor=/);
    expect(nextOf(first)).toMatch(/^https:\/\/phi\.internal\/v1\/phi\/Patient\?_cursor=/);
    for (const e of first.entry ?? []) expect(e.fullUrl).toBe(`https://phi.internal/v1/phi/Patient/${e.resource.id}`);
    const pages = await allPages(first);
    expect(pages).toHaveLength(3);
    expect(new Set(matches(pages).map((e) => e.resource.id)).size).toBe(5);

    const capped = await get("/Patient?family=Linkwell&_count=100000");
    expect(capped.entry).toHaveLength(5);
    expect(capped.total).toBe(5);
  });

  it("links carry _count; a client may re-issue a link with its own _count (as MedplumClient does) and paging goes on", async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await createPatient(patient("Recount", `R${i}`))).id);
    const first = await get("/Patient?family=Recount&_count=2");
    const next = new URL(nextOf(first) ?? "");
    expect(next.searchParams.get("_count")).toBe("2");
    expect(first.link.find((l) => l.relation === "self")?.url).toMatch(/&_count=2$/);
    // searchResourcePages keeps the link's query; had it none, it would add _count=1000 (capped here).
    next.searchParams.set("_count", "1000");
    const rest = await get(next.toString());
    expect(nextOf(rest)).toBeUndefined();
    expect([...matches([first, rest]).map((e) => e.resource.id)].sort()).toEqual([...made].sort());
    next.searchParams.set("_count", "1");
    expect(matches(await allPages(await get(next.toString()))).map((e) => e.resource.id)).toEqual(matches([rest]).map((e) => e.resource.id));
    for (const bad of ["0", "x", "-1"]) {
      next.searchParams.set("_count", bad);
      expect((await call(next.toString())).status, bad).toBe(400);
    }
    next.searchParams.set("_count", "1");
    next.searchParams.append("_count", "2");
    expect((await call(next.toString())).status).toBe(400);
  });

  it("_total=accurate on every page, _summary=count and _count=0 give the total only", async () => {
    for (let i = 0; i < 5; i++) await createPatient(patient("Totalled", `T${i}`));
    const first = await get("/Patient?family=Totalled&_count=2&_total=accurate");
    expect(first.total).toBe(5);
    expect(first.entry).toHaveLength(2);
    const pages = await allPages(first);
    expect(pages.map((p) => p.total)).toEqual([5, 5, 5]);
    // Without _total, a total is given only when it is free (the first page holds every match).
    expect((await get("/Patient?family=Totalled&_count=2")).total).toBeUndefined();
    // Count-only in any parameter order: `_total=none` before or after does not turn the count into 0.
    for (const q of ["_summary=count", "_count=0", "_count=0&_total=none", "_total=none&_count=0", "_summary=count&_total=none", "_total=none&_summary=count"]) {
      const count = await get(`/Patient?family=Totalled&${q}`);
      expect(count.total, q).toBe(5);
      expect(count.entry, q).toBeUndefined();
      expect(nextOf(count), q).toBeUndefined();
    }
  });

  it("_sort by _lastUpdated both ways, and _lastUpdated with every prefix", async () => {
    const made: { id: string; at: string }[] = [];
    for (let i = 0; i < 5; i++) {
      const { resource } = await createPatient(patient("Sorted", `S${i}`));
      made.push({ id: String(resource.id), at: String((resource.meta as { lastUpdated: string }).lastUpdated) });
      // Distinct instants, so the prefix checks below have something to tell apart.
      await new Promise((r) => setTimeout(r, 3));
    }
    const key = (e: Entry) => `${e.resource.meta?.lastUpdated ?? ""} ${e.resource.id}`;
    const asc = matches(await allPages(await get("/Patient?family=Sorted&_sort=_lastUpdated&_count=2"))).map(key);
    expect(asc).toEqual([...asc].sort());
    expect(asc.map((k) => k.split(" ")[1])).toEqual(made.map((m) => m.id));
    const desc = matches(await allPages(await get("/Patient?family=Sorted&_sort=-_lastUpdated&_count=2"))).map(key);
    expect(desc).toEqual([...asc].reverse());

    const mid = made[2]?.at ?? "";
    const ids = async (q: string) => (matches(await allPages(await get(`/Patient?family=Sorted&_sort=_lastUpdated&${q}`))).map((e) => e.resource.id));
    expect(await ids(`_lastUpdated=gt${mid}`)).toEqual(made.slice(3).map((m) => m.id));
    expect(await ids(`_lastUpdated=ge${mid}`)).toEqual(made.slice(2).map((m) => m.id));
    expect(await ids(`_lastUpdated=lt${mid}`)).toEqual(made.slice(0, 2).map((m) => m.id));
    expect(await ids(`_lastUpdated=le${mid}`)).toEqual(made.slice(0, 3).map((m) => m.id));
    expect(await ids(`_lastUpdated=eq${mid}`)).toEqual([made[2]?.id]);
    expect(await ids(`_lastUpdated=${mid}`)).toEqual([made[2]?.id]);
    expect((await call(`/Patient?_lastUpdated=xx${mid}`)).status).toBe(400);
  });

  it("resources with the same lastUpdated page by id, each exactly once, both ways", async () => {
    const tied: string[] = [];
    for (let i = 0; i < 5; i++) tied.push((await createPatient(patient("Tied", `T${i}`))).id);
    // Same instant for all five (as concurrent writers can produce): only the id orders them.
    await env.DB.prepare(`UPDATE resource_versions SET last_updated = ? WHERE resource_type = 'Patient' AND id IN (${tied.map(() => "?").join(",")})`)
      .bind("2026-01-01T00:00:00.000Z", ...tied)
      .run();
    const byId = [...tied].sort();
    const asc = matches(await allPages(await get("/Patient?family=Tied&_sort=_lastUpdated&_count=2"))).map((e) => e.resource.id);
    expect(asc).toEqual(byId);
    const desc = matches(await allPages(await get("/Patient?family=Tied&_sort=-_lastUpdated&_count=2"))).map((e) => e.resource.id);
    expect(desc).toEqual([...byId].reverse());
  });

  it("_include=Observation:patient and _revinclude=Observation:patient, audited with every patient returned", async () => {
    const p = await createPatient(patient("Included"));
    const q = await createPatient(patient("Included"));
    const obs = (subject: string) => ({
      resourceType: "Observation",
      status: "final",
      code: { coding: [{ system: "http://loinc.org", code: "8867-4" }] },
      subject: { reference: `Patient/${subject}` },
      effectiveDateTime: "2024-05-01T10:00:00Z",
    });
    const o: string[] = [];
    for (const s of [p.id, p.id, q.id]) o.push(String((await json(await call("/Observation", { method: "POST", body: obs(s) }))).id));

    const inc = await get(`/Observation?patient=${p.id}&_include=Observation:patient`);
    expect(inc.entry?.filter((e) => e.search.mode === "match").map((e) => e.resource.id).sort()).toEqual([o[0], o[1]].sort());
    expect(inc.entry?.filter((e) => e.search.mode === "include").map((e) => `${e.resource.resourceType}/${e.resource.id}`)).toEqual([`Patient/${p.id}`]);

    const rev = await get(`/Patient?family=Included&_revinclude=Observation:patient&_count=1&_sort=_lastUpdated`);
    expect(rev.entry?.filter((e) => e.search.mode === "match").map((e) => e.resource.id)).toEqual([p.id]);
    expect(rev.entry?.filter((e) => e.search.mode === "include").map((e) => e.resource.id).sort()).toEqual([o[0], o[1]].sort());
    // The include follows each page: the next page brings q and its one Observation.
    const second = await get(nextOf(rev) ?? "");
    expect(second.entry?.map((e) => `${e.search.mode} ${e.resource.id}`)).toEqual([`match ${q.id}`, `include ${o[2]}`]);
    const last = (await auditRows()).at(-1);
    expect(last).toMatchObject({ action: "search", outcome: "success", patient_ids: q.id });

    for (const bad of ["/Patient?_include=Observation:patient", "/Observation?_revinclude=Observation:patient", "/Observation?_include=Observation:subject"]) {
      expect((await call(bad)).status, bad).toBe(400);
    }
  });

  it("pages stay stable while resources are created, updated and deleted: no duplicate, no gap", async () => {
    const original: string[] = [];
    for (let i = 0; i < 9; i++) original.push((await createPatient(patient("Stable", `S${i}`))).id);
    for (const sort of ["_lastUpdated", "-_lastUpdated", "_id"]) {
      let deleted = "";
      const first = await get(`/Patient?family=Stable&_sort=${sort}&_count=2`);
      const pages = await allPages(first, async (n, sofar) => {
        // Touch every resource between pages: updates give each a newer lastUpdated (which
        // would move it to the end of a lastUpdated order), and a new one is created.
        for (const id of original) {
          const cur = await json(await call(`/Patient/${id}`));
          if (cur.resourceType !== "Patient") continue;
          expect((await call(`/Patient/${id}`, { method: "PUT", body: { ...cur, gender: n % 2 ? "male" : "female" } })).status).toBe(200);
        }
        await createPatient(patient("Stable", `new-${sort}-${n}`));
        if (n === 2 && !deleted) {
          // One not yet served is deleted: it is left out, nothing else shifts.
          const seen = matches(sofar).map((e) => e.resource.id);
          const unseen = original.find((id) => !seen.includes(id));
          if (unseen) {
            expect((await call(`/Patient/${unseen}`, { method: "DELETE" })).status).toBe(204);
            deleted = unseen;
          }
        }
      });
      const served = matches(pages).map((e) => e.resource.id);
      expect(new Set(served).size, sort).toBe(served.length);
      const live = original.filter((id) => id !== deleted);
      expect(served.filter((id) => original.includes(id)).sort(), sort).toEqual(live.sort());
      // Remove the deleted one from the set for the next order.
      if (deleted) original.splice(original.indexOf(deleted), 1);
    }
  });
});
