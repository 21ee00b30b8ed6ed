import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  INTERACTIONS,
  parseSmartScope,
  platformScopesOf,
  SMART_SCOPES_SUPPORTED,
  smartAllows,
  smartRequestDecision,
  withPlatformScopes,
  type Interaction,
} from "../../../shared/smart-scopes";

/** The pure SMART scope mapping (shared/smart-scopes.ts), with no runtime involved. */
describe("parseSmartScope", () => {
  const ok: [string, string, string][] = [
    ["system/Patient.rs", "Patient", "rs"],
    ["system/Patient.r", "Patient", "r"],
    ["system/Patient.s", "Patient", "s"],
    ["system/Observation.cruds", "Observation", "cruds"],
    ["system/Observation.cud", "Observation", "cud"],
    ["system/Observation.c", "Observation", "c"],
    ["system/Observation.ud", "Observation", "ud"],
    ["system/*.rs", "*", "rs"],
    ["system/*.cruds", "*", "cruds"],
    // v1: read = rs, write = cud, * = cruds
    ["system/Patient.read", "Patient", "rs"],
    ["system/Patient.write", "Patient", "cud"],
    ["system/Patient.*", "Patient", "cruds"],
    ["system/*.read", "*", "rs"],
    ["system/*.write", "*", "cud"],
    ["system/*.*", "*", "cruds"],
  ];
  it.each(ok)("%s -> %s with %s", (token, type, letters) => {
    expect(parseSmartScope(token)).toEqual({ ok: true, scope: { resourceType: type, perms: [...letters] } });
  });

  const refused: [string, string][] = [
    ["patient/Patient.rs", "unsupported_context"],
    ["patient/*.read", "unsupported_context"],
    ["user/Observation.rs", "unsupported_context"],
    ["user/*.*", "unsupported_context"],
    ["system/Patient.xyz", "bad_permissions"],
    ["system/Patient.sr", "bad_permissions"], // v2 letters keep the order c r u d s
    ["system/Patient.rr", "bad_permissions"],
    ["system/Patient.", "bad_permissions"],
    ["system/Patient", "bad_permissions"],
    ["system/Patient.READ", "bad_permissions"],
    ["system/Patient.rs.rs", "bad_permissions"],
    ["system/Patient.crudsx", "bad_permissions"],
    // Names of Object.prototype's members are not permissions (they once parsed as granted, with a function).
    ["system/Patient.constructor", "bad_permissions"],
    ["system/Patient.toString", "bad_permissions"],
    ["system/*.__proto__", "bad_permissions"],
    ["system/Observation.hasOwnProperty", "bad_permissions"],
    ["system/Condition.rs", "unknown_resource_type"],
    ["system/patient.rs", "unknown_resource_type"],
    ["system/.rs", "unknown_resource_type"],
    ["system/**.rs", "unknown_resource_type"],
    ["system/Observation.rs?category=laboratory", "granular_unsupported"],
    ["system/Patient.rs?", "granular_unsupported"],
    ["phi:read", "not_smart"],
    ["admin", "not_smart"],
    ["launch/patient", "not_smart"],
    ["openid", "not_smart"],
    ["System/Patient.rs", "not_smart"],
    ["", "not_smart"],
  ];
  it.each(refused)("%s is refused: %s", (token, reason) => {
    expect(parseSmartScope(token)).toEqual({ ok: false, reason });
  });

  it("never throws, and whatever it accepts is system/<known type or *>.<valid letters>", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `system/${s}`), fc.constantFrom(...SMART_SCOPES_SUPPORTED)), (s) => {
        const p = parseSmartScope(s);
        if (p.ok) {
          expect(s.startsWith("system/")).toBe(true);
          expect(["*", "Patient", "Observation"]).toContain(p.scope.resourceType);
          expect(p.scope.perms.length).toBeGreaterThan(0);
        }
      }),
    );
  });

  it("every scope discovery advertises parses", () => {
    for (const s of SMART_SCOPES_SUPPORTED) expect(parseSmartScope(s).ok, s).toBe(true);
  });
});

describe("mapping onto platform scopes", () => {
  it("r and s need phi:read; c, u and d need phi:write", () => {
    const of = (s: string) => {
      const p = parseSmartScope(s);
      if (!p.ok) throw new Error(s);
      return platformScopesOf(p.scope).sort();
    };
    expect(of("system/Patient.rs")).toEqual(["phi:read"]);
    expect(of("system/Patient.r")).toEqual(["phi:read"]);
    expect(of("system/Patient.c")).toEqual(["phi:write"]);
    expect(of("system/*.cud")).toEqual(["phi:write"]);
    expect(of("system/*.cruds")).toEqual(["phi:read", "phi:write"]);
    expect(of("system/Observation.write")).toEqual(["phi:write"]);
  });

  it("a client gets a SMART scope only when its platform scopes allow every letter", () => {
    const cases: [string[], string, ReturnType<typeof smartRequestDecision>][] = [
      [["phi:read"], "system/Patient.rs", { ok: true }],
      [["phi:read"], "system/*.rs", { ok: true }],
      [["phi:read"], "system/Patient.read", { ok: true }],
      [["phi:read"], "system/Patient.c", { ok: false, reason: "exceeds_client" }],
      [["phi:read"], "system/Patient.cruds", { ok: false, reason: "exceeds_client" }],
      [["phi:read"], "system/*.*", { ok: false, reason: "exceeds_client" }],
      [["phi:write"], "system/Observation.cud", { ok: true }],
      [["phi:write"], "system/Observation.rs", { ok: false, reason: "exceeds_client" }],
      [["phi:read", "phi:write"], "system/*.cruds", { ok: true }],
      [["phi:*"], "system/*.*", { ok: true }],
      [["payment:read", "admin"], "system/Patient.r", { ok: false, reason: "exceeds_client" }],
      [[], "system/Patient.rs", { ok: false, reason: "exceeds_client" }],
      [["phi:*"], "patient/Patient.rs", { ok: false, reason: "unsupported_context" }],
      [["phi:*"], "user/Patient.rs", { ok: false, reason: "unsupported_context" }],
      [["phi:*"], "system/Patient.xyz", { ok: false, reason: "bad_permissions" }],
      [["phi:*"], "phi:read", { ok: false, reason: "not_smart" }],
    ];
    for (const [allowed, token, want] of cases) expect(smartRequestDecision(allowed, token), `${allowed.join(" ")} / ${token}`).toEqual(want);
  });

  it("the gateway sees the platform scopes SMART scopes stand for, and nothing from malformed ones", () => {
    expect(withPlatformScopes(["system/Patient.rs"]).sort()).toEqual(["phi:read", "system/Patient.rs"]);
    expect(withPlatformScopes(["system/Observation.c"]).sort()).toEqual(["phi:write", "system/Observation.c"]);
    expect(withPlatformScopes(["system/*.cruds"]).sort()).toEqual(["phi:read", "phi:write", "system/*.cruds"]);
    expect(withPlatformScopes(["patient/*.cruds", "system/Patient.xyz", "user/Patient.rs"]).sort()).toEqual(["patient/*.cruds", "system/Patient.xyz", "user/Patient.rs"]);
    expect(withPlatformScopes(["payment:read"])).toEqual(["payment:read"]);
  });
});

describe("smartAllows: resource type and interaction", () => {
  const all = (scopes: string[], type: string) => INTERACTIONS.filter((i) => smartAllows(scopes, type, i)).join("");

  it("a SMART scope allows its own type and letters only", () => {
    expect(all(["system/Patient.rs"], "Patient")).toBe("rs");
    expect(all(["system/Patient.rs"], "Observation")).toBe("");
    expect(all(["system/Patient.r"], "Patient")).toBe("r"); // read by id, no search
    expect(all(["system/Patient.s"], "Patient")).toBe("s");
    expect(all(["system/Observation.cruds"], "Observation")).toBe("cruds");
    expect(all(["system/Observation.cruds"], "Patient")).toBe("");
    expect(all(["system/*.rs"], "Observation")).toBe("rs");
    expect(all(["system/*.*"], "Patient")).toBe("cruds");
    expect(all(["system/Patient.read", "system/Observation.write"], "Patient")).toBe("rs");
    expect(all(["system/Patient.read", "system/Observation.write"], "Observation")).toBe("cud");
  });

  it("platform scopes cover every type; unions add up", () => {
    expect(all(["phi:read"], "Observation")).toBe("rs");
    expect(all(["phi:write"], "Patient")).toBe("cud");
    expect(all(["phi:*"], "Patient")).toBe("cruds");
    expect(all(["phi:write", "system/Patient.r"], "Patient")).toBe("crud");
  });

  it("refuses what it does not understand: other contexts, bad letters, other services' scopes", () => {
    for (const s of ["patient/Patient.rs", "user/*.*", "system/Patient.xyz", "system/Patient.rs?x=1", "payment:*", "admin", "audit:read", ""]) {
      expect(all([s], "Patient"), s).toBe("");
    }
  });

  it("never allows more than the union of what each scope allows alone (property)", () => {
    const scope = fc.oneof(
      fc.constantFrom("phi:read", "phi:write", "phi:*", "admin", "patient/Patient.rs"),
      fc.tuple(fc.constantFrom("Patient", "Observation", "*"), fc.subarray([...INTERACTIONS], { minLength: 1 })).map(([t, l]) => `system/${t}.${l.join("")}`),
    );
    fc.assert(
      fc.property(fc.array(scope, { maxLength: 4 }), fc.constantFrom("Patient", "Observation"), fc.constantFrom<Interaction>(...INTERACTIONS), (scopes, type, i) => {
        expect(smartAllows(scopes, type, i)).toBe(scopes.some((s) => smartAllows([s], type, i)));
      }),
    );
  });
});
