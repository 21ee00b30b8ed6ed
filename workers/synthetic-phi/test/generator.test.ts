import { afterEach, describe, expect, it, vi } from "vitest";
import { BundleSchema, ResourceSchema } from "../src/fhir/bundle";
import { ConditionSchema } from "../src/fhir/condition";
import { ObservationSchema } from "../src/fhir/observation";
import { PatientSchema } from "../src/fhir/patient";
import { bmiOf, drawBody } from "../src/generator/body";
import { CONDITIONS } from "../src/generator/conditions";
import { DEFAULT_REFERENCE_DATE, GENERATOR, NS, SYSTEMS } from "../src/generator/constants";
import { ageInYears, fromEpochDay, isCalendarDate, toEpochDay } from "../src/generator/dates";
import { EMAIL_DOMAINS, phone, ssn } from "../src/generator/identity";
import { generatePatient, resourcesOf, type GenerationParams } from "../src/generator/patient";
import { hash128, Rng, streamWords, uuidFromWords } from "../src/generator/random";
import { heartRateRange } from "../src/generator/vitals";
import { buildBundle } from "../src/output/bundle";

const P: GenerationParams = { seed: "unit", referenceDate: DEFAULT_REFERENCE_DATE, observations: true };
const json = (v: unknown) => JSON.stringify(v);
const yearsOld = (birthDate: string, ref: string) => ageInYears(toEpochDay(birthDate), toEpochDay(ref));

afterEach(() => {
  vi.useRealTimers();
});

describe("determinism and random access", () => {
  it("gives byte-identical patients for the same inputs, and different ones for another seed or index", () => {
    for (let i = 0; i < 50; i++) expect(json(generatePatient(P, i))).toBe(json(generatePatient(P, i)));
    expect(json(generatePatient(P, 1))).not.toBe(json(generatePatient(P, 2)));
    expect(json(generatePatient({ ...P, seed: "unit2" }, 1))).not.toBe(json(generatePatient(P, 1)));
  });

  it("generates patient N alone exactly as in a full run, whatever was generated before", () => {
    const full = buildBundle({ ...P, offset: 0, count: 40 });
    const slice = buildBundle({ ...P, offset: 25, count: 15 });
    const byId = (b: typeof full) => b.entry.filter((e) => e.resource.resourceType !== "Provenance").map((e) => json(e.resource));
    const fullResources = byId(full);
    const sliceResources = byId(slice);
    expect(fullResources.slice(fullResources.length - sliceResources.length)).toEqual(sliceResources);
    // Out of order and repeated: no hidden state carries from one patient to the next.
    const lone = json(generatePatient(P, 9_999));
    generatePatient(P, 3);
    generatePatient({ ...P, seed: "other" }, 9_999);
    expect(json(generatePatient(P, 9_999))).toBe(lone);
  });

  it("keeps the Patient and Conditions identical with Observations off", () => {
    const on = generatePatient(P, 7);
    const off = generatePatient({ ...P, observations: false }, 7);
    expect(off.observations).toEqual([]);
    expect(json(off.patient)).toBe(json(on.patient));
    expect(json(off.conditions)).toBe(json(on.conditions));
  });

  it("depends on the reference date, never on the clock", () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2001-03-04T05:06:07Z"));
    const early = json(buildBundle({ ...P, offset: 0, count: 20 }));
    vi.setSystemTime(new Date("2099-12-31T23:59:59Z"));
    const late = json(buildBundle({ ...P, offset: 0, count: 20 }));
    expect(late).toBe(early);
    vi.useRealTimers();
    const other = buildBundle({ ...P, referenceDate: "2030-06-15", offset: 0, count: 20 });
    expect(json(other)).not.toBe(early);
    // Same person, shifted in time: the age at the reference date is what stays.
    const a = generatePatient(P, 5).patient;
    const b = generatePatient({ ...P, referenceDate: "2030-06-15" }, 5).patient;
    expect(b.name).toEqual(a.name);
    expect(Math.abs(yearsOld(b.birthDate, "2030-06-15") - yearsOld(a.birthDate, P.referenceDate))).toBeLessThanOrEqual(1);
  });
});

describe("FHIR shape (zod schemas of every element we emit)", () => {
  it("validates every resource of 1,000 patients and the bundle around them", { timeout: 60_000 }, () => {
    const bundle = buildBundle({ ...P, seed: "shape", offset: 0, count: 1_000 });
    const parsed = BundleSchema.safeParse(bundle);
    expect(parsed.success, JSON.stringify(parsed.error?.issues.slice(0, 3))).toBe(true);
    const types = new Set(bundle.entry.map((e) => e.resource.resourceType));
    expect([...types].sort()).toEqual(["Condition", "Observation", "Patient", "Provenance"]);
    for (const { resource } of bundle.entry) {
      expect(resource.meta.security).toContainEqual(expect.objectContaining({ code: "HTEST" }));
      expect(resource.meta.tag).toEqual([
        { system: SYSTEMS.generator, code: GENERATOR },
        { system: SYSTEMS.seed, code: "shape" },
      ]);
    }
    const prov = bundle.entry.at(-1)?.resource;
    expect(prov?.resourceType).toBe("Provenance");
    if (prov?.resourceType !== "Provenance") return;
    expect(prov.target).toHaveLength(1_000);
    expect(prov.recorded).toBe(`${P.referenceDate}T00:00:00Z`);
    expect(prov.agent[0]?.who.identifier?.value).toBe(GENERATOR);
    expect(prov.entity[0]?.what.identifier).toEqual({ system: SYSTEMS.seed, value: "shape" });
  });

  it("rejects what FHIR R4 would reject", () => {
    const { patient, observations, conditions } = generatePatient(P, 1);
    expect(PatientSchema.safeParse({ ...patient, name: "Jane" }).success).toBe(false);
    expect(PatientSchema.safeParse({ ...patient, birthDate: "yesterday" }).success).toBe(false);
    expect(PatientSchema.safeParse({ ...patient, unexpected: true }).success).toBe(false);
    const [o] = observations;
    expect(o && ObservationSchema.safeParse({ ...o, component: [] }).success).toBe(false);
    expect(o && ObservationSchema.safeParse({ ...o, effectiveDateTime: "2020-13-01T00:00:00Z" }).success).toBe(false);
    const withBoth = o && { ...o, component: [{ code: o.code, valueQuantity: o.valueQuantity }] };
    expect(ObservationSchema.safeParse(withBoth).success).toBe(false);
    const c = conditions[0] ?? generatePatient(P, 2).conditions[0];
    if (c) {
      expect(ConditionSchema.safeParse({ ...c, abatementDateTime: "2020-01-01T00:00:00Z", clinicalStatus: { coding: [{ system: "x", code: "active" }] } }).success).toBe(false);
    }
    expect(ResourceSchema.safeParse({ resourceType: "Encounter" }).success).toBe(false);
  });
});

describe("safe by construction: every identifier of 10,000 patients", () => {
  it("uses only never-issued SSNs, fictional phones, reserved e-mail domains and systems, unassigned ZIPs", () => {
    const ids = new Set<string>();
    const keys = new Set<string>();
    const violations: string[] = [];
    const check = (ok: boolean, what: string) => {
      if (!ok) violations.push(what);
    };
    for (let i = 0; i < 10_000; i++) {
      const { patient } = generatePatient({ ...P, seed: "safety", observations: false }, i);
      check(PatientSchema.safeParse(patient).success, `patient ${i} shape`);
      ids.add(patient.id);
      for (const id of patient.identifier) {
        check(id.system.startsWith(`${NS}:`), `system ${id.system}`);
        if (id.system === SYSTEMS.ssn) check(/^9\d{2}-(0[1-9]|[1-9]\d)-(?!0000)\d{4}$/.test(id.value), `ssn ${id.value}`);
        else if (id.system === SYSTEMS.mrn) check(/^SYN\d{8}$/.test(id.value), `mrn ${id.value}`);
        else if (id.system === SYSTEMS.patient) {
          check(id.value === `safety:${i}`, `key ${id.value}`);
          keys.add(id.value);
        } else check(false, `unexpected identifier ${id.system}`);
      }
      for (const t of patient.telecom) {
        if (t.system === "phone") check(/^\+1-[2-9]\d{2}-555-01\d{2}$/.test(t.value), `phone ${t.value}`);
        else {
          const [local = "", domain = ""] = t.value.split("@");
          check((EMAIL_DOMAINS as readonly string[]).includes(domain) || domain.endsWith(".test"), `email domain ${domain}`);
          check(/^[a-z0-9]+\.[a-z0-9]+$/.test(local), `email local part ${local}`);
        }
      }
      for (const a of patient.address) check(/^000\d{2}$/.test(a.postalCode) && a.country === "US", `zip ${a.postalCode}`);
    }
    expect(violations.slice(0, 10)).toEqual([]);
    expect(ids.size).toBe(10_000);
    expect(keys.size).toBe(10_000);
  }, 120_000);

  it("keeps the rules for any draw (pure helpers)", () => {
    const r = new Rng(hash128("helpers"));
    for (let i = 0; i < 2_000; i++) {
      const area = Number(ssn(r).slice(0, 3));
      expect(area).toBeGreaterThanOrEqual(900);
      expect(phone(r)).toMatch(/^\+1-[2-9]\d{2}-555-01\d{2}$/);
      expect(phone(r)).not.toMatch(/^\+1-\d11-/);
    }
  });
});

describe("clinical plausibility", () => {
  const records = Array.from({ length: 1_000 }, (_, i) => generatePatient({ ...P, seed: "clinic" }, i));

  it("emits BMI consistent with the emitted weight and height, and vitals in range for age", { timeout: 60_000 }, () => {
    for (const { patient, observations } of records) {
      const years = yearsOld(patient.birthDate, P.referenceDate);
      const value = (code: string) => observations.find((o) => o.code.coding.some((c) => c.code === code))?.valueQuantity?.value;
      const w = value("29463-7");
      const h = value("8302-2");
      const bmi = value("39156-5");
      expect(w).toBeGreaterThan(1.5);
      expect(h).toBeGreaterThan(40);
      if (years >= 2) expect(bmi).toBe(bmiOf(w ?? 0, h ?? 1));
      else expect(bmi).toBeUndefined();
      const hr = value("8867-4") ?? 0;
      const [lo, hi] = heartRateRange(years);
      expect(hr).toBeGreaterThanOrEqual(lo);
      expect(hr).toBeLessThanOrEqual(hi + 10);
      const bp = observations.find((o) => o.code.coding[0]?.code === "85354-9");
      if (years < 3) expect(bp).toBeUndefined();
      else {
        const [sys, dia] = (bp?.component ?? []).map((c) => c.valueQuantity.value);
        expect(sys).toBeGreaterThan(dia ?? Infinity);
        expect(bp?.component?.map((c) => c.code.coding[0]?.code)).toEqual(["8480-6", "8462-4"]);
      }
      const t = value("8310-5") ?? 0;
      expect(t >= 36 && t <= 37.6).toBe(true);
      for (const o of observations) {
        expect(o.effectiveDateTime >= patient.birthDate).toBe(true);
        expect(o.effectiveDateTime <= `${P.referenceDate}T23:59:59Z`).toBe(true);
        expect(o.subject.reference).toBe(`Patient/${patient.id}`);
      }
    }
  });

  it("gives conditions only to the ages and sexes they occur in, with onsets inside the life", () => {
    const codes = new Set<string>();
    for (const { patient, observations, conditions } of records) {
      const years = yearsOld(patient.birthDate, P.referenceDate);
      const bmi = observations.find((o) => o.code.coding[0]?.code === "39156-5")?.valueQuantity?.value ?? 0;
      const has = (code: string) => conditions.some((c) => c.code.coding[0]?.code === code);
      for (const c of conditions) {
        const code = c.code.coding[0]?.code ?? "";
        codes.add(code);
        const def = CONDITIONS.find((d) => d.code === code);
        expect(def).toBeDefined();
        expect(c.onsetDateTime.slice(0, 10) >= patient.birthDate).toBe(true);
        expect(c.onsetDateTime.slice(0, 10) <= P.referenceDate).toBe(true);
        expect(yearsOld(patient.birthDate, c.onsetDateTime.slice(0, 10))).toBeGreaterThanOrEqual(Math.floor(def?.minAge ?? 0));
      }
      if (patient.gender === "female") expect(has("266569009")).toBe(false);
      if (patient.gender === "male") expect(has("72892002")).toBe(false);
      if (years < 18) expect(has("59621000") || has("44054006") || has("162864005")).toBe(false);
      if (years >= 18) expect(has("162864005")).toBe(bmi >= 30);
      if (years >= 10) expect(has("65363002")).toBe(false);
    }
    // The catalogue is actually exercised.
    expect(codes.size).toBeGreaterThanOrEqual(12);
  });

  it("draws ages across life and both sexes", () => {
    const ages = records.map((r) => yearsOld(r.patient.birthDate, P.referenceDate));
    expect(Math.min(...ages)).toBe(0);
    expect(Math.max(...ages)).toBeGreaterThanOrEqual(90);
    const female = records.filter((r) => r.patient.gender === "female").length;
    expect(female / records.length).toBeGreaterThan(0.45);
    expect(female / records.length).toBeLessThan(0.55);
    const body = drawBody(new Rng(streamWords("x", 1, "body")));
    expect(body.bmi).toBe(bmiOf(body.weightKg, body.heightCm));
  });
});

describe("building blocks", () => {
  it("hashes and derives ids deterministically, with RFC 9562 version 8 layout", () => {
    expect(hash128("a")).toEqual(hash128("a"));
    expect(hash128("a")).not.toEqual(hash128("b"));
    expect(streamWords("a", 12, "s")).not.toEqual(streamWords("a1", 2, "s"));
    const id = uuidFromWords(hash128("id"));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("draws in range and reproducibly", () => {
    const a = new Rng(hash128("r"));
    const b = new Rng(hash128("r"));
    for (let i = 0; i < 1_000; i++) {
      const x = a.next();
      expect(x).toBe(b.next());
      expect(x >= 0 && x < 1).toBe(true);
      const n = a.int(3, 5);
      b.int(3, 5);
      expect(n >= 3 && n <= 5).toBe(true);
      const c = a.clampedNormal(0, 10, -1, 1);
      b.clampedNormal(0, 10, -1, 1);
      expect(c >= -1 && c <= 1).toBe(true);
    }
    a.seed(42);
    b.seed([42]);
    expect(a.next()).toBe(b.next());
    expect(() => a.pick([])).toThrow(RangeError);
  });

  it("does calendar arithmetic without the clock", () => {
    expect(fromEpochDay(toEpochDay("2024-02-29"))).toBe("2024-02-29");
    expect(isCalendarDate("2023-02-29")).toBe(false);
    expect(isCalendarDate("2024-02-29")).toBe(true);
    expect(isCalendarDate("2024-2-9")).toBe(false);
    expect(ageInYears(toEpochDay("2000-06-15"), toEpochDay("2010-06-14"))).toBe(9);
    expect(ageInYears(toEpochDay("2000-06-15"), toEpochDay("2010-06-15"))).toBe(10);
  });

  it("lists patients before their resources in output order", () => {
    const r = generatePatient(P, 3);
    const out = resourcesOf(r);
    expect(out[0]).toBe(r.patient);
    expect(out).toHaveLength(1 + r.observations.length + r.conditions.length);
  });
});
