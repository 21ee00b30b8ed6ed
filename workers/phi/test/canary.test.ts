import { afterEach, describe, expect, it, vi } from "vitest";
import { auditRows, call, form, json, patient } from "./helpers";

describe("log canary", () => {
  afterEach(() => vi.restoreAllMocks());

  it("a patient's unique marker name appears in no log line, error message, URL or audit record", async () => {
    const marker = `Canary${crypto.randomUUID().replaceAll("-", "")}`;
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    const urls: string[] = [];
    const errors: string[] = [];
    const seen = async (res: Response): Promise<Response> => {
      for (const h of ["location", "content-location"]) {
        const v = res.headers.get(h);
        if (v) urls.push(v);
      }
      const text = await res.clone().text();
      if (res.status >= 400) errors.push(text);
      for (const m of text.matchAll(/"(?:url|fullUrl)":"([^"]*)"/g)) urls.push(m[1] ?? "");
      return res;
    };

    const created = await seal(seen, call("/Patient", { method: "POST", body: patient(marker, marker) }));
    const id = String((await json(created)).id);
    const body = await json(await seal(seen, call(`/Patient/${id}`)));
    await seal(seen, call("/Patient/_search", form({ family: marker, _count: "1" })));
    await seal(seen, call("/Patient/_search", form({ given: marker, birthdate: marker })));
    await seal(seen, call("/Patient", { method: "POST", body: { ...patient(marker), gender: marker } }));
    await seal(seen, call("/Patient", { method: "POST", body: { ...patient(marker), [marker]: true } }));
    await seal(seen, call(`/Patient/${id}`, { method: "PUT", body: { ...body, birthDate: marker } }));
    await seal(seen, call(`/Patient/${id}`, { method: "PUT", body: { ...body, active: true } }));
    await seal(seen, call(`/Patient/${id}/_history`));
    await seal(seen, call(`/Patient/${marker}`));
    await seal(seen, call(`/Patient/${id}`, { method: "DELETE" }));

    expect(lines.length).toBeGreaterThan(5);
    expect(urls.length).toBeGreaterThan(3);
    expect(errors.length).toBeGreaterThan(3);
    const audit = JSON.stringify(await auditRows());
    for (const [what, text] of [
      ["logs", lines.join("\n")],
      ["urls", urls.join("\n")],
      ["errors", errors.join("\n")],
      ["audit", audit],
    ] as const) {
      expect(text.toLowerCase(), what).not.toContain(marker.toLowerCase());
    }
  });
});

async function seal(seen: (r: Response) => Promise<Response>, res: Promise<Response>): Promise<Response> {
  return seen(await res);
}
