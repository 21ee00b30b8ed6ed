import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseKeyring } from "../../../shared/crypto";
import { ApiError } from "../../../shared/errors";
import {
  ACTION_INTERACTION,
  AUDIT_ACTION_SCOPE,
  decideAuditScope,
  decideIncludes,
  decideReadable,
  decideResource,
  decideScope,
  decideVersionMatch,
  enforce,
  parseVersionTag,
  type AuditOnlyAction,
  type ResourceAction,
} from "../src/access";
import { describeRequest, outcomeFor, parsePurpose, safeId, traceIdOf } from "../src/audit/describe";
import { dateInterval } from "../src/fhir/dates";
import { isFhirPath, operationOutcome } from "../src/fhir/outcome";
import { parseSearch } from "../src/fhir/search-params";
import { openCursor, sealCursor } from "../src/service/cursor";

const ID = "0b7e2a1c-1234-4abc-8def-0123456789ab";

describe("access decisions", () => {
  it("maps every FHIR action to its platform scope and SMART letter, honouring wildcards", () => {
    for (const [action, letter] of Object.entries(ACTION_INTERACTION) as [ResourceAction, string][]) {
      const scope = "cud".includes(letter) ? "phi:write" : "phi:read";
      for (const type of ["Patient", "Observation"]) {
        expect(decideScope([scope], action, type)).toEqual({ ok: true });
        expect(decideScope(["phi:*"], action, type)).toEqual({ ok: true });
        expect(decideScope([`system/${type}.${letter}`], action, type)).toEqual({ ok: true });
        expect(decideScope([`system/*.cruds`], action, type)).toEqual({ ok: true });
        expect(decideScope([], action, type)).toMatchObject({ ok: false, status: 403, code: "insufficient_scope" });
        expect(decideScope([scope === "phi:read" ? "phi:write" : "phi:read"], action, type).ok).toBe(false);
        const otherType = type === "Patient" ? "Observation" : "Patient";
        expect(decideScope([`system/${otherType}.cruds`], action, type).ok).toBe(false);
        expect(decideScope([`system/${type}.${"cruds".replace(letter, "")}`], action, type).ok).toBe(false);
      }
    }
    const refused = decideScope(["system/Patient.rs"], "search", "Observation");
    expect(refused.ok ? "" : refused.detail).toContain("system/Observation.s");
  });

  it("audit routes need audit:read; no SMART scope grants them", () => {
    for (const action of Object.keys(AUDIT_ACTION_SCOPE) as AuditOnlyAction[]) {
      expect(decideAuditScope(["audit:read"], action)).toEqual({ ok: true });
      expect(decideAuditScope(["audit:*"], action)).toEqual({ ok: true });
      expect(decideAuditScope(["system/*.cruds", "phi:*"], action)).toMatchObject({ ok: false, status: 403 });
    }
  });

  it("includes need read (of the Patients referenced) or search (of the Observations revincluded)", () => {
    const none = { include: false, revinclude: false };
    expect(decideIncludes([], none)).toEqual({ ok: true });
    expect(decideIncludes(["system/Observation.rs"], { include: true, revinclude: false }).ok).toBe(false);
    expect(decideIncludes(["system/Observation.rs", "system/Patient.r"], { include: true, revinclude: false }).ok).toBe(true);
    expect(decideIncludes(["system/Patient.rs"], { include: false, revinclude: true }).ok).toBe(false);
    expect(decideIncludes(["system/Patient.rs", "system/Observation.s"], { include: false, revinclude: true }).ok).toBe(true);
    expect(decideIncludes(["phi:read"], { include: true, revinclude: true }).ok).toBe(true);
    const conditional = decideResource(["system/Patient.c"], "Patient", "c", "r", "s");
    expect(conditional.ok ? "" : conditional.detail).toContain("system/Patient.r");
  });

  it("readable only when present and not a tombstone", () => {
    expect(decideReadable(null)).toMatchObject({ ok: false, status: 404 });
    expect(decideReadable({ deleted: 1 })).toMatchObject({ ok: false, status: 410 });
    expect(decideReadable({ deleted: 0 })).toEqual({ ok: true });
  });

  it("If-Match must name the current version exactly", () => {
    expect(parseVersionTag('W/"3"')).toBe(3);
    expect(parseVersionTag('"3"')).toBe(3);
    for (const bad of ["3", 'W/"x"', 'W/"3', "*", "", 'W/"1234567890"']) expect(parseVersionTag(bad)).toBeUndefined();
    expect(decideVersionMatch(undefined, { version_id: 2 })).toEqual({ ok: true });
    expect(decideVersionMatch('W/"2"', { version_id: 2 })).toEqual({ ok: true });
    expect(decideVersionMatch('W/"1"', { version_id: 2 })).toMatchObject({ ok: false, status: 412 });
    expect(decideVersionMatch("nonsense", { version_id: 2 })).toMatchObject({ ok: false, status: 412 });
    expect(() => enforce({ ok: false, status: 412, code: "version_mismatch", detail: "d" })).toThrow(ApiError);
    expect(() => enforce({ ok: true })).not.toThrow();
  });
});

describe("audit descriptions", () => {
  it("maps method and path to an action without recording non-server ids", () => {
    const cases: [string, string, string, string, string][] = [
      ["POST", "/v1/phi/Patient", "create", "Patient", ""],
      ["GET", "/v1/phi/Patient", "search", "Patient", ""],
      ["POST", "/v1/phi/Patient/_search", "search", "Patient", ""],
      ["GET", `/v1/phi/Patient/${ID}`, "read", "Patient", ID],
      ["PUT", `/v1/phi/Patient/${ID}`, "update", "Patient", ID],
      ["DELETE", `/v1/phi/Patient/${ID}`, "delete", "Patient", ID],
      ["GET", `/v1/phi/Patient/${ID}/_history`, "history", "Patient", ID],
      ["GET", `/v1/phi/Patient/${ID}/_history/2`, "vread", "Patient", ID],
      ["GET", `/v1/phi/Patient/${ID}/$access-log`, "access-log", "Patient", ID],
      ["GET", `/v1/phi/Observation/${ID}`, "read", "Observation", ID],
      ["GET", "/v1/phi/Patient/John Smith", "read", "Patient", "(not a server id)"],
      ["GET", "/v1/phi/audit", "audit-search", "AuditTrail", ""],
      ["GET", "/v1/phi/audit/verify", "audit-verify", "AuditTrail", ""],
      ["POST", "/v1/phi/audit", "unknown", "", ""],
      ["GET", "/v1/phi/audit/x/y", "unknown", "", ""],
      ["GET", "/v1/phi/Medication", "unknown", "", ""],
      ["PATCH", "/v1/phi/Patient", "unknown", "", ""],
      ["GET", "/v1/phi/Patient/_search", "unknown", "", ""],
      ["PATCH", `/v1/phi/Patient/${ID}`, "unknown", "", ""],
      ["POST", `/v1/phi/Patient/${ID}/_history`, "unknown", "", ""],
      ["GET", `/v1/phi/Patient/${ID}/_history/1/x`, "unknown", "", ""],
      ["GET", `/v1/phi/Patient/${ID}/other`, "unknown", "", ""],
    ];
    for (const [m, p, action, type, id] of cases) {
      expect(describeRequest(m, p), `${m} ${p}`).toEqual({ action, resourceType: type, resourceId: id });
    }
    expect(safeId(undefined)).toBe("");
  });

  it("classifies outcomes, purposes and trace ids", () => {
    expect([200, 201, 204, 401, 403, 400, 404, 410, 412, 500, 503].map(outcomeFor)).toEqual([
      "success", "success", "success", "denied", "denied", "failed", "failed", "failed", "failed", "error", "error",
    ]);
    expect(parsePurpose(undefined)).toBe("unspecified");
    expect(parsePurpose("  ")).toBe("unspecified");
    expect(parsePurpose("TREAT")).toBe("TREAT");
    expect(parsePurpose("ETREAT ")).toBe("ETREAT");
    expect(parsePurpose("Jane Doe")).toBeUndefined();
    expect(parsePurpose("x".repeat(65))).toBeUndefined();
    expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(traceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBe("");
    expect(traceIdOf("garbage")).toBe("");
    expect(traceIdOf(undefined)).toBe("");
  });
});

describe("FHIR dates and search parameters", () => {
  it("turns dates into the UTC interval they cover", () => {
    expect(dateInterval("2024")).toEqual({ lo: "2024-01-01T00:00:00.000Z", hi: "2024-12-31T23:59:59.999Z" });
    expect(dateInterval("2024-02")).toEqual({ lo: "2024-02-01T00:00:00.000Z", hi: "2024-02-29T23:59:59.999Z" });
    expect(dateInterval("2024-02-29")).toEqual({ lo: "2024-02-29T00:00:00.000Z", hi: "2024-02-29T23:59:59.999Z" });
    expect(dateInterval("2024-02-29T10:00+02:00")).toEqual({ lo: "2024-02-29T08:00:00.000Z", hi: "2024-02-29T08:00:59.999Z" });
    expect(dateInterval("2024-02-29T10:00:05Z")).toEqual({ lo: "2024-02-29T10:00:05.000Z", hi: "2024-02-29T10:00:05.999Z" });
    expect(dateInterval("2024-02-29T10:00:05.25Z")).toEqual({ lo: "2024-02-29T10:00:05.250Z", hi: "2024-02-29T10:00:05.250Z" });
    for (const bad of ["2023-02-29", "2024-13", "2024-00-01", "2024-01-01T10:00", "24-01-01", "today", "2024-01-01T25:00:00Z"]) {
      expect(dateInterval(bad), bad).toBeUndefined();
    }
  });

  it("parses every parameter and refuses the rest", () => {
    expect(parseSearch("Patient", [["family", "X"], ["_count", "500"], ["_format", "json"]], 100)).toEqual({
      conditions: [{ kind: "exact", param: "family", value: "X" }],
      count: 100,
      sort: "_id",
      total: false,
      summaryCount: false,
      include: false,
      revinclude: false,
    });
    // Result parameters: _count above the maximum is capped, 0 asks for the total only.
    expect(parseSearch("Patient", [["_count", "123456789"]], 100).count).toBe(100);
    expect(parseSearch("Patient", [["_count", "0"]], 100)).toMatchObject({ count: 0, total: true });
    // ... in any order with _total (which then cannot turn the count into 0).
    for (const params of [
      [["_count", "0"], ["_total", "none"]],
      [["_total", "none"], ["_count", "0"]],
      [["_summary", "count"], ["_total", "none"]],
      [["_total", "none"], ["_summary", "count"]],
    ] as [string, string][][]) {
      expect(parseSearch("Patient", params, 100), JSON.stringify(params)).toMatchObject({ total: true });
    }
    expect(parseSearch("Patient", [["_sort", "-_lastUpdated"], ["_total", "accurate"], ["_revinclude", "Observation:patient"]], 100)).toMatchObject({
      sort: "-_lastUpdated",
      total: true,
      revinclude: true,
    });
    expect(parseSearch("Observation", [["_include", "Observation:patient"], ["_summary", "count"]], 100)).toMatchObject({ include: true, summaryCount: true, total: true });
    expect(parseSearch("Patient", [["_lastUpdated", "gt2024-01-01"]], 50).conditions).toEqual([
      { kind: "range", param: "_lastUpdated", op: "gt", instant: "2024-01-01T23:59:59.999Z" },
    ]);
    for (const [name, value] of [["_sort", "family"], ["_total", "yes"], ["_summary", "true"], ["_include", "Observation:patient"], ["_revinclude", "Observation:subject"], ["_lastUpdated", "ne2024"]]) {
      expect(() => parseSearch("Patient", [[name ?? "", value ?? ""]], 50), `${name}=${value}`).toThrow(ApiError);
    }
    expect(() => parseSearch("Patient", [["_format", "xml"]], 50)).toThrow(expect.objectContaining({ status: 406 }));
    expect(parseSearch("Patient", [["identifier", "sys|v"]], 50).conditions).toEqual([{ kind: "exact", param: "identifier", value: "sys|v" }]);
    expect(parseSearch("Patient", [["identifier", "|v"]], 50).conditions).toEqual([{ kind: "exact", param: "identifier-value", value: "v" }]);
    expect(parseSearch("Observation", [["subject", `Patient/${ID}`]], 50).conditions).toEqual([{ kind: "exact", param: "patient", value: ID }]);
    expect(parseSearch("Observation", [["date", "2024"]], 50).conditions).toHaveLength(2);
    expect(parseSearch("Observation", [["date", "lt2024"]], 50).conditions).toEqual([
      { kind: "range", param: "date", op: "lt", instant: "2024-01-01T00:00:00.000Z" },
    ]);
    for (const bad of [
      [["date", "2024"]],
      [["code", "x"]],
      [["family", "x".repeat(300)]],
      [["birthdate", "1990"]],
      ...Array.from({ length: 1 }, () => Array.from({ length: 11 }, () => ["family", "x"])),
    ] as [string, string][][]) {
      expect(() => parseSearch("Patient", bad, 50)).toThrow(ApiError);
    }
    expect(() => parseSearch("Observation", [["date", "ne2024"]], 50)).toThrow(ApiError);
    expect(() => parseSearch("Observation", [["code", "sys|"]], 50)).toThrow(ApiError);
  });

  it("seals cursors to the caller and refuses expired, foreign or altered ones", async () => {
    const ring = await parseKeyring(env.PHI_ENCRYPTION_KEYS);
    const page = {
      type: "Patient" as const,
      query: { conditions: [{ kind: "exact" as const, param: "family", value: "Zebedee" }], count: 5, sort: "-_lastUpdated" as const, total: true, summaryCount: false, include: false, revinclude: true },
      after: { key: "2026-01-01T00:00:00.000Z", id: "a" },
      asOf: "2026-01-02T00:00:00.000Z",
    };
    const sealed = await sealCursor(ring, "u1", page, 1000);
    expect(sealed).not.toContain("Zebedee");
    expect(await openCursor(ring, "u1", "Patient", sealed, 1001)).toEqual(page);
    await expect(openCursor(ring, "u2", "Patient", sealed, 1001)).rejects.toThrow(ApiError);
    await expect(openCursor(ring, "u1", "Observation", sealed, 1001)).rejects.toThrow(ApiError);
    await expect(openCursor(ring, "u1", "Patient", sealed, 1000 + 3601)).rejects.toThrow(ApiError);
    await expect(openCursor(ring, "u1", "Patient", sealed.slice(0, -2) + "AA", 1001)).rejects.toThrow(ApiError);
  });
});

describe("OperationOutcome", () => {
  it("maps statuses to FHIR issue codes and keeps client input out", () => {
    const codes = [400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422, 429, 500, 503].map(
      (s) => (operationOutcome(new ApiError(s, "x"), undefined).issue as { code: string }[])[0]?.code,
    );
    expect(codes).toEqual([
      "invalid", "login", "forbidden", "not-found", "not-supported", "conflict", "deleted", "conflict", "too-costly",
      "not-supported", "processing", "throttled", "exception", "transient",
    ]);
    const oo = operationOutcome(
      new ApiError(400, "invalid_request", "bad", {
        extra: { errors: [{ path: "name.0", code: "unrecognized_keys", message: 'Unrecognized key: "Secret"' }, { code: "weird" }] },
      }),
      "rid",
    );
    expect(JSON.stringify(oo)).not.toContain("Secret");
    expect(oo).toMatchObject({ issue: [{ severity: "error", diagnostics: "request rid" }, { expression: ["name.0"] }, {}] });
    expect(isFhirPath("/v1/phi/Patient")).toBe(true);
    expect(isFhirPath("/v1/phi/Observation/1")).toBe(true);
    expect(isFhirPath("/v1/phi/audit")).toBe(false);
    expect(isFhirPath("/v1/phi/Patients")).toBe(false);
  });
});
