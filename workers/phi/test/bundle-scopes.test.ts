import { describe, expect, it } from "vitest";
import { BUNDLE_FLOOR_SCOPES, bundleScopes, entryScope } from "../../../shared/bundle-scopes";
import { hasAllScopes } from "../../../shared/scopes";

const entry = (method: unknown) => ({ request: { method, url: "Patient" } });

describe("bundleScopes: what a Bundle posted to the base needs (pure)", () => {
  it("reads need phi:read, every other method (unknown ones too) phi:write, and a Bundle needs all its entries need", () => {
    expect(entryScope("GET", "Patient/x")).toBe("phi:read");
    expect(entryScope("HEAD", "Patient/x")).toBe("phi:read");
    for (const m of ["POST", "PUT", "DELETE", "PATCH", "get", "", undefined, 7, null]) expect(entryScope(m, "Patient"), String(m)).toBe("phi:write");
    expect(bundleScopes({ entry: [entry("GET"), entry("GET")] })).toEqual(["phi:read"]);
    expect(bundleScopes({ entry: [entry("POST")] })).toEqual(["phi:write"]);
    expect(bundleScopes({ entry: [entry("GET"), entry("DELETE")] })).toEqual(["phi:read", "phi:write"]);
    // An entry without a request is counted as a write: never less than it could need.
    expect(bundleScopes({ entry: [{}, "x", null] })).toEqual(["phi:write"]);
  });

  it("a body naming no entry needs the floor (phi:read): nobody without a phi scope reaches phi here", () => {
    for (const body of [undefined, null, "text", 3, [], {}, { entry: [] }, { entry: {} }, { entry: "GET" }]) {
      expect(bundleScopes(body), JSON.stringify(body)).toEqual([...BUNDLE_FLOOR_SCOPES]);
    }
  });

  it("phi:* covers any Bundle; phi:read alone never covers a write", () => {
    const mixed = bundleScopes({ entry: [entry("GET"), entry("PUT")] });
    expect(hasAllScopes(["phi:*"], mixed)).toBe(true);
    expect(hasAllScopes(["phi:read"], mixed)).toBe(false);
    expect(hasAllScopes(["phi:write"], bundleScopes({ entry: [entry("POST")] }))).toBe(true);
  });
});
