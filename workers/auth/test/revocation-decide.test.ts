import { describe, expect, it } from "vitest";
import { decideView, LOAD_WAIT_MS, refusalOf, type ViewBounds, type ViewClock } from "../src/revocation/decide";

/** Pure decisions of the gateway's revocation view: `now` is a parameter, no clock is read. */
const B: ViewBounds = { refreshMs: 5000, maxStalenessMs: 30_000 };
const T = 1_800_000_000_000;
const fresh = (over: Partial<ViewClock> = {}): ViewClock => ({ asOf: T, refreshStartedAt: T, failedAt: undefined, ...over });

describe("decideView: when an isolate may answer from its view", () => {
  it("a cold isolate (no view) loads before answering and refuses if the load fails", () => {
    expect(decideView({ asOf: undefined, refreshStartedAt: undefined, failedAt: undefined }, B, T)).toEqual({ kind: "load", reason: "cold", fallback: false });
  });

  it("a request that must load while another request of its isolate is loading waits for that load, up to LOAD_WAIT_MS", () => {
    const cold = { kind: "load", reason: "cold", fallback: false } as const;
    // The other load started 10 ms ago: look again (the isolate's timestamps, not that request's promise).
    expect(decideView({ asOf: undefined, refreshStartedAt: T - 10, failedAt: undefined }, B, T)).toEqual({ kind: "wait", then: cold });
    expect(decideView({ asOf: undefined, refreshStartedAt: T - LOAD_WAIT_MS + 1, failedAt: undefined }, B, T)).toEqual({ kind: "wait", then: cold });
    // Presumed lost after LOAD_WAIT_MS (its request may have been cancelled): this request loads its own.
    expect(decideView({ asOf: undefined, refreshStartedAt: T - LOAD_WAIT_MS, failedAt: undefined }, B, T)).toEqual(cold);
    // That load failed: nothing to wait for.
    expect(decideView({ asOf: undefined, refreshStartedAt: T - 10, failedAt: T - 10 }, B, T)).toEqual(cold);
    // An older attempt failed and a newer one is in flight: wait for the newer one.
    expect(decideView({ asOf: undefined, refreshStartedAt: T - 10, failedAt: T - 500 }, B, T)).toEqual({ kind: "wait", then: cold });
    // It landed: the view is fresh and answers.
    expect(decideView({ asOf: T - 10, refreshStartedAt: T - 10, failedAt: undefined }, B, T)).toEqual({ kind: "use" });
    // The same for an overdue view and a stale one.
    expect(decideView(fresh({ refreshStartedAt: T + 5400 }), B, T + 5500)).toEqual({ kind: "wait", then: { kind: "load", reason: "overdue", fallback: true } });
    expect(decideView(fresh({ refreshStartedAt: T + 40_000 }), B, T + 40_100)).toEqual({ kind: "wait", then: { kind: "load", reason: "stale", fallback: false } });
    // A view that may answer never waits: a refresh in flight runs in the background.
    expect(decideView(fresh({ refreshStartedAt: T + 2600 }), B, T + 3000)).toEqual({ kind: "use" });
  });

  it("a view younger than half the bound answers with no D1 work", () => {
    for (const age of [0, 1, 2499]) expect(decideView(fresh(), B, T + age)).toEqual({ kind: "use" });
    // A clock that went backwards is not an old view.
    expect(decideView(fresh(), B, T - 1000)).toEqual({ kind: "use" });
  });

  it("from half the bound, a request refreshes in its own waitUntil unless a refresh began moments ago", () => {
    expect(decideView(fresh(), B, T + 2500)).toEqual({ kind: "use_and_refresh" });
    expect(decideView(fresh(), B, T + 4999)).toEqual({ kind: "use_and_refresh" });
    expect(decideView(fresh({ refreshStartedAt: T + 2600 }), B, T + 3000)).toEqual({ kind: "use" });
    // That refresh is presumed lost after half the bound: the next request starts another.
    expect(decideView(fresh({ refreshStartedAt: T + 100 }), B, T + 4000)).toEqual({ kind: "use_and_refresh" });
  });

  it("past the bound with D1 healthy (an idle isolate), the request loads first: the bound holds", () => {
    expect(decideView(fresh(), B, T + 5000)).toEqual({ kind: "load", reason: "overdue", fallback: true });
    // A slow background refresh in flight does not let an overdue view answer: the request waits for it, and loads
    // its own once it is LOAD_WAIT_MS old.
    expect(decideView(fresh({ refreshStartedAt: T + 4800 }), B, T + 5500)).toEqual({ kind: "wait", then: { kind: "load", reason: "overdue", fallback: true } });
    expect(decideView(fresh({ refreshStartedAt: T + 4800 }), B, T + 4800 + LOAD_WAIT_MS)).toEqual({ kind: "load", reason: "overdue", fallback: true });
  });

  it("past the bound with D1 failing, the view answers up to the hard bound and retries in the background", () => {
    const failing = fresh({ refreshStartedAt: T + 6000, failedAt: T + 6000 });
    expect(decideView(failing, B, T + 6100)).toEqual({ kind: "use" });
    expect(decideView(failing, B, T + 8500)).toEqual({ kind: "use_and_refresh" });
    expect(decideView(failing, B, T + 29_999)).toEqual({ kind: "use_and_refresh" });
  });

  it("past the hard bound nothing answers from the view: load or refuse (fail closed)", () => {
    expect(decideView(fresh(), B, T + 30_000)).toEqual({ kind: "load", reason: "stale", fallback: false });
    expect(decideView(fresh(), B, T + 3_600_000)).toEqual({ kind: "load", reason: "stale", fallback: false });
    // D1 failed moments ago: refuse at once rather than pile requests onto it.
    expect(decideView(fresh({ refreshStartedAt: T + 30_100, failedAt: T + 30_100 }), B, T + 31_000)).toEqual({ kind: "refuse" });
    // Once that failure is older than half the bound, a request tries D1 again.
    expect(decideView(fresh({ refreshStartedAt: T + 30_100, failedAt: T + 30_100 }), B, T + 32_600)).toEqual({ kind: "load", reason: "stale", fallback: false });
  });

  it("a success after failures clears them: the view is judged by its new age", () => {
    const recovered = { asOf: T + 7000, refreshStartedAt: T + 7000, failedAt: T + 6000 };
    expect(decideView(recovered, B, T + 8000)).toEqual({ kind: "use" });
    expect(decideView(recovered, B, T + 12_000)).toEqual({ kind: "load", reason: "overdue", fallback: true });
  });

  it("holds for other bounds: never answers from a view older than refreshMs unless D1 is failing, never older than maxStalenessMs", () => {
    const bounds: ViewBounds[] = [
      { refreshMs: 100, maxStalenessMs: 101 },
      { refreshMs: 1000, maxStalenessMs: 60_000 },
      { refreshMs: 5000, maxStalenessMs: 30_000 },
    ];
    for (const b of bounds) {
      for (let age = 0; age < b.maxStalenessMs * 2; age += Math.max(1, Math.floor(b.refreshMs / 7))) {
        for (const failedAt of [undefined, T + 1]) {
          const d = decideView({ asOf: T, refreshStartedAt: failedAt ?? T, failedAt }, b, T + age);
          const answers = d.kind === "use" || d.kind === "use_and_refresh" || (d.kind === "load" && d.fallback);
          if (age >= b.maxStalenessMs) expect(answers, `${b.refreshMs}/${b.maxStalenessMs} age ${age}`).toBe(false);
          if (age >= b.refreshMs && failedAt === undefined) expect(d.kind, `age ${age}`).toBe("load");
        }
      }
    }
  });
});

describe("refusalOf: what the view refuses", () => {
  const data = { revoked: new Map([["jti-revoked", 1]]), disabled: new Map([["cli_off", 1]]) };
  it("a revoked jti, a disabled client; never the bootstrap client for being 'disabled'", () => {
    expect(refusalOf(data, { jti: "jti-revoked", clientId: "cli_on" }, false)).toEqual({ refused: true, reason: "revoked" });
    expect(refusalOf(data, { jti: "jti-ok", clientId: "cli_off" }, false)).toEqual({ refused: true, reason: "client_disabled" });
    expect(refusalOf(data, { jti: "jti-ok", clientId: "cli_on" }, false)).toEqual({ refused: false });
    expect(refusalOf(data, { jti: "jti-ok", clientId: "cli_off" }, true)).toEqual({ refused: false });
    // Revocation applies to the bootstrap client's tokens too.
    expect(refusalOf(data, { jti: "jti-revoked", clientId: "cli_off" }, true)).toEqual({ refused: true, reason: "revoked" });
  });
});
