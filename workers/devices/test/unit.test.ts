import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEVICES_ROUTES } from "../../auth/src/gateway/routes/devices";
import { CODES } from "../src/codes";
import { app } from "../src/index";
import { breach, checkIfMatch, deviceAccess, liveAccess, presenceStep, spendBadFrame, versionEtag } from "../src/policy";
import { parseFrame } from "../src/session/frames";

const ACTIVE = { status: "active" };
const GONE = { status: "decommissioned" };

describe("deviceAccess: a device acts only as itself", () => {
  const cases: [string | undefined, string, { status: string } | undefined, number | "ok"][] = [
    ["dev_a", "dev_a", ACTIVE, "ok"],
    ["dev_a", "dev_a", GONE, 410],
    ["dev_a", "dev_a", undefined, 404],
    ["dev_b", "dev_a", ACTIVE, 403],
    ["dev_b", "dev_a", undefined, 403],
    ["dev_b", "dev_a", GONE, 403],
    [undefined, "dev_a", ACTIVE, 403],
    [undefined, "dev_a", undefined, 403],
    ["", "dev_a", ACTIVE, 403],
    ["DEV_A", "dev_a", ACTIVE, 403],
  ];
  it.each(cases)("bound to %s, acting on %s", (bound, target, device, want) => {
    const d = deviceAccess({ scopes: ["device:connect"], deviceId: bound }, target, device);
    expect(d.ok ? "ok" : d.status).toBe(want);
  });

  it("never lets a token bound to another device through (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.constantFrom(ACTIVE, GONE, undefined), (bound, target, device) => {
        fc.pre(bound !== target);
        expect(deviceAccess({ scopes: ["device:connect"], deviceId: bound }, target, device)).toMatchObject({ ok: false, status: 403 });
      }),
      { numRuns: 200 },
    );
  });

  it("liveAccess needs an active device", () => {
    expect(liveAccess(ACTIVE).ok).toBe(true);
    expect(liveAccess(GONE)).toMatchObject({ status: 410 });
    expect(liveAccess(undefined)).toMatchObject({ status: 404 });
  });
});

describe("checkIfMatch (RFC 9110 13.1.1, RFC 6585 3)", () => {
  const cases: [string | undefined | null, number, number | "ok"][] = [
    [undefined, 0, 428],
    [null, 0, 428],
    ["", 0, 428],
    ["  ", 0, 428],
    ["*", 3, 428],
    ['"3"', 3, "ok"],
    [' "3" ', 3, "ok"],
    ['"1", "3"', 3, "ok"],
    ['"2"', 3, 412],
    ['W/"3"', 3, 412],
    ["3", 3, 412],
    ['"03"', 3, 412],
  ];
  it.each(cases)("If-Match %j against version %i", (header, version, want) => {
    const r = checkIfMatch(header, version);
    expect(r.ok ? "ok" : r.status).toBe(want);
  });
  it("round-trips every version's own ETag", () => {
    fc.assert(fc.property(fc.nat(), (v) => {
        expect(checkIfMatch(versionEtag(v), v).ok).toBe(true);
      }), { numRuns: 100 });
  });
});

describe("breach", () => {
  it("is inclusive of the limits themselves", () => {
    expect(breach(90, { low: 90 })).toBeNull();
    expect(breach(89.9, { low: 90 })).toEqual({ kind: "low", limit: 90 });
    expect(breach(130, { high: 130 })).toBeNull();
    expect(breach(131, { low: 40, high: 130 })).toEqual({ kind: "high", limit: 130 });
    expect(breach(10, undefined)).toBeNull();
  });
  it("raises exactly when the value is outside [low, high]", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), fc.double({ noNaN: true, min: -1e6, max: 0 }), fc.double({ noNaN: true, min: 0, max: 1e6 }), (v, low, high) => {
        expect(breach(v, { low, high }) !== null).toBe(v < low || v > high);
      }),
      { numRuns: 200 },
    );
  });
});

describe("presenceStep", () => {
  const T = 1_000_000;
  it("marks offline only an online device silent for the whole limit", () => {
    expect(presenceStep(true, T, T + 120_000, 120_000)).toEqual({ kind: "mark_offline" });
    expect(presenceStep(true, T, T + 119_999, 120_000)).toEqual({ kind: "rearm", at: T + 120_000 });
    expect(presenceStep(false, T, T + 999_999, 120_000)).toEqual({ kind: "idle" });
    expect(presenceStep(true, null, T, 120_000)).toEqual({ kind: "idle" });
  });
});

describe("spendBadFrame", () => {
  it("closes past the limit within a window and forgives after it", () => {
    let b = { bad: 0, windowStart: 0 };
    for (let i = 1; i <= 3; i++) {
      const r = spendBadFrame(b, 10, 3, 1000);
      expect(r.close).toBe(false);
      b = r.budget;
    }
    expect(spendBadFrame(b, 20, 3, 1000).close).toBe(true);
    expect(spendBadFrame(b, 1000, 3, 1000)).toEqual({ budget: { bad: 1, windowStart: 1000 }, close: false });
  });
});

describe("parseFrame", () => {
  const good = { seq: 1, code: "150456", value: 97, unit: "%", device_time: "2026-11-25T12:00:00+01:00" };
  it("accepts every allow-listed code with its unit", () => {
    for (const [code, spec] of Object.entries(CODES)) {
      expect(parseFrame(JSON.stringify({ ...good, code, unit: spec.unit, value: spec.min })).ok).toBe(true);
      expect(parseFrame(JSON.stringify({ ...good, code, unit: spec.unit === "%" ? "/min" : "%", value: spec.min })).ok).toBe(false);
    }
  });
  it("limits frames in UTF-8 bytes, not characters", () => {
    // 1,400 euro signs: about 1,450 characters, over 4,200 bytes.
    const wide = JSON.stringify({ ...good, note: "\u20ac".repeat(1400) });
    expect(wide.length).toBeLessThan(4096);
    expect(parseFrame(wide)).toMatchObject({ ok: false, frame: { error: "frame_too_large" } });
    expect(parseFrame(JSON.stringify({ ...good, note: "x".repeat(1400) }))).toMatchObject({ ok: false, frame: { error: "invalid_reading" } });
  });
  it("never throws and never accepts malformed frames (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.record({ seq: fc.anything(), code: fc.string(), value: fc.anything(), unit: fc.string(), device_time: fc.string() }).map((v) => JSON.stringify(v)),
        ),
        (frame) => {
          const r = parseFrame(frame);
          if (r.ok) {
            expect(Number.isSafeInteger(r.reading.seq)).toBe(true);
            expect(CODES[r.reading.code]?.unit).toBe(r.reading.unit);
          } else {
            expect(r.frame.error).toMatch(/^(invalid_json|invalid_reading|frame_too_large)$/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
  it("accepts a device_time only when its instant in UTC has a four-digit year, so stored times sort as text (property)", () => {
    const pad = (n: number, w = 2) => String(n).padStart(w, "0");
    const rfc3339 = fc
      .record({
        y: fc.constantFrom(0, 1, 1969, 1970, 2026, 9998, 9999),
        mo: fc.integer({ min: 1, max: 12 }),
        d: fc.integer({ min: 1, max: 28 }),
        h: fc.integer({ min: 0, max: 23 }),
        mi: fc.integer({ min: 0, max: 59 }),
        off: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
      })
      .map(({ y, mo, d, h, mi, off }) => {
        const o = Math.abs(off);
        return `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:00${off < 0 ? "-" : "+"}${pad(Math.floor(o / 60))}:${pad(o % 60)}`;
      });
    fc.assert(
      fc.property(rfc3339, rfc3339, (a, b) => {
        const ra = parseFrame(JSON.stringify({ ...good, device_time: a }));
        const inWindow = (t: string) => /^\d{4}-/.test(new Date(t).toISOString());
        expect(ra.ok).toBe(inWindow(a));
        if (!ra.ok) expect(ra.frame.issues?.map((i) => i.path)).toEqual(["device_time"]);
        if (ra.ok && inWindow(b)) {
          // What the store keeps, compared as SQLite compares text (byte order): the text order is the time order.
          const [sa, sb] = [new Date(a).toISOString(), new Date(b).toISOString()];
          expect(sa < sb ? -1 : sa > sb ? 1 : 0).toBe(Math.sign(Date.parse(a) - Date.parse(b)));
        }
      }),
      { numRuns: 500 },
    );
    expect(parseFrame(JSON.stringify({ ...good, device_time: "9999-12-31T23:59:59.9999Z" })).ok).toBe(true);
    expect(parseFrame(JSON.stringify({ ...good, device_time: "9999-12-31T23:00:00-05:00" })).ok).toBe(false);
    expect(parseFrame(JSON.stringify({ ...good, device_time: "0000-01-01T00:00:00+05:00" })).ok).toBe(false);
  });
  it("rejects non-finite, fractional and unsafe sequence numbers, NaN values and prototype keys", () => {
    for (const seq of [1.5, -1, 2 ** 53, "1"]) expect(parseFrame(JSON.stringify({ ...good, seq })).ok).toBe(false);
    expect(parseFrame(JSON.stringify({ ...good, value: "97" })).ok).toBe(false);
    expect(parseFrame(JSON.stringify({ ...good, code: "__proto__" })).ok).toBe(false);
    expect(parseFrame(JSON.stringify({ ...good, code: "toString" })).ok).toBe(false);
    expect(parseFrame(new ArrayBuffer(2))).toMatchObject({ ok: false, frame: { error: "unsupported_frame" } });
  });
});

describe("the gateway's route table", () => {
  it("lists exactly the /v1 routes this worker serves", () => {
    const served = new Set(
      app.routes.filter((r) => r.path.startsWith("/v1/devices") && r.method !== "ALL").map((r) => `${r.method} ${r.path}`),
    );
    const table = new Set(DEVICES_ROUTES.map((r) => `${r.method} /v1/devices${r.path === "/" ? "" : r.path}`));
    expect([...served].sort()).toEqual([...table].sort());
    for (const r of DEVICES_ROUTES) expect(r.websocket === true).toBe(r.path.endsWith("/session") || r.path.endsWith("/live"));
  });
});
