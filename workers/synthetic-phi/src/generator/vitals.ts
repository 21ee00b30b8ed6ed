import type { Meta, Quantity } from "../fhir/datatypes";
import type { Observation } from "../fhir/observation";
import { LOINC, UCUM } from "./constants";
import { round1, type Body } from "./body";
import { hasCondition, type ConditionDraw } from "./conditions";
import type { Rng } from "./random";

/**
 * Vital signs of one visit, per the FHIR R4 vital signs profiles
 * (https://hl7.org/fhir/R4/observation-vitalsigns.html): LOINC codes, UCUM units,
 * values plausible for age (pediatric heart-rate ranges per PALS) and coherent
 * with the patient's conditions (hypertension raises blood pressure).
 */
const CATEGORY = [
  {
    coding: [{ system: "http://terminology.hl7.org/CodeSystem/observation-category", code: "vital-signs", display: "Vital Signs" }],
    text: "Vital Signs",
  },
];
const PROFILE = "http://hl7.org/fhir/StructureDefinition/";

export interface VitalValues {
  heartRate: number;
  systolic?: number;
  diastolic?: number;
  temperature: number;
  spo2: number;
}

/** Resting heart-rate range (beats/min) by age in years. */
export function heartRateRange(years: number): [number, number] {
  if (years < 1) return [100, 160];
  if (years < 3) return [90, 150];
  if (years < 6) return [80, 120];
  if (years < 13) return [70, 110];
  return [60, 100];
}

export function drawVitals(r: Rng, body: Body, conditions: readonly ConditionDraw[]): VitalValues {
  const years = body.ageDays / 365.2425;
  const [lo, hi] = heartRateRange(years);
  const pregnant = hasCondition(conditions, "72892002");
  const heartRate = Math.round(r.clampedNormal((lo + hi) / 2 + (pregnant ? 10 : 0), (hi - lo) / 6, lo, hi + (pregnant ? 10 : 0)));
  const temperature = round1(r.clampedNormal(36.8, 0.25, 36.1, 37.5));
  const asthma = hasCondition(conditions, "195967001");
  const spo2 = Math.round(r.clampedNormal(asthma ? 96.5 : 97.8, 1, asthma ? 92 : 95, 100));
  const v: VitalValues = { heartRate, temperature, spo2 };
  // Blood pressure is routine from age 3 (AAP 2017 guideline).
  if (years >= 3) {
    const hypertensive = hasCondition(conditions, "59621000");
    const base = years < 13 ? 100 : years < 18 ? 110 : 112 + 0.3 * (years - 18);
    const systolic = Math.round(r.clampedNormal(base + (hypertensive ? 18 : 0), 8, 80, 190));
    const diastolic = Math.round(Math.min(systolic - 25, r.clampedNormal(systolic * 0.62 + (hypertensive ? 6 : 0), 5, 45, 115)));
    v.systolic = systolic;
    v.diastolic = diastolic;
  }
  return v;
}

const q = (value: number, unit: string, code = unit): Quantity => ({ value, unit, system: UCUM, code });
const loinc = (code: string, display: string) => ({ coding: [{ system: LOINC, code, display }], text: display });

export interface VitalIds {
  /** Id of the k-th vital of this patient. */
  id: (k: number) => string;
}

/** The Observations of one visit at `effective`, in a fixed order. */
export function vitalObservations(
  ids: VitalIds,
  patientId: string,
  meta: Meta,
  effective: string,
  body: Body,
  v: VitalValues,
): Observation[] {
  const years = body.ageDays / 365.2425;
  const obs = (k: number, profile: string, code: ReturnType<typeof loinc>, value: Partial<Observation>): Observation => ({
    resourceType: "Observation",
    id: ids.id(k),
    meta: { ...meta, profile: [PROFILE + "vitalsigns", PROFILE + profile] },
    status: "final",
    category: CATEGORY,
    code,
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: effective,
    ...value,
  });
  const out: Observation[] = [
    obs(0, "heartrate", loinc("8867-4", "Heart rate"), { valueQuantity: q(v.heartRate, "/min") }),
    obs(1, "bodytemp", loinc("8310-5", "Body temperature"), { valueQuantity: q(v.temperature, "Cel") }),
    obs(
      2,
      "oxygensat",
      {
        coding: [
          { system: LOINC, code: "2708-6", display: "Oxygen saturation in Arterial blood" },
          { system: LOINC, code: "59408-5", display: "Oxygen saturation in Arterial blood by Pulse oximetry" },
        ],
        text: "Oxygen saturation",
      },
      { valueQuantity: q(v.spo2, "%") },
    ),
    obs(3, "bodyweight", loinc("29463-7", "Body weight"), { valueQuantity: q(body.weightKg, "kg") }),
    obs(4, "bodyheight", loinc("8302-2", "Body height"), { valueQuantity: q(body.heightCm, "cm") }),
  ];
  // BMI is defined from age 2 (CDC); below it growth is weight-for-length.
  if (years >= 2) out.push(obs(5, "bmi", loinc("39156-5", "Body mass index (BMI) [Ratio]"), { valueQuantity: q(body.bmi, "kg/m2") }));
  if (v.systolic !== undefined && v.diastolic !== undefined) {
    out.push(
      obs(6, "bp", loinc("85354-9", "Blood pressure panel with all children optional"), {
        component: [
          { code: loinc("8480-6", "Systolic blood pressure"), valueQuantity: q(v.systolic, "mm[Hg]") },
          { code: loinc("8462-4", "Diastolic blood pressure"), valueQuantity: q(v.diastolic, "mm[Hg]") },
        ],
      }),
    );
  }
  return out;
}
