import type { Condition } from "../fhir/condition";
import type { Meta } from "../fhir/datatypes";
import { SNOMED } from "./constants";
import { dateTimeAt } from "./dates";
import type { Body } from "./body";
import type { Rng } from "./random";

/**
 * The condition catalogue: SNOMED CT codes (the ones Synthea's modules use) with
 * a prevalence that depends on age, sex and BMI, so a 6-year-old never has
 * benign prostatic hyperplasia and obesity follows the BMI we emit.
 */
interface ConditionDef {
  code: string;
  display: string;
  /** Chronic conditions stay active; acute ones resolve after 1-3 weeks. */
  chronic: boolean;
  /** Youngest age (years) at onset. */
  minAge: number;
  /** Probability for this body at the reference date (0 = never). */
  p: (years: number, b: Body) => number;
}

const adult = (years: number) => years >= 18;

export const CONDITIONS: readonly ConditionDef[] = [
  { code: "59621000", display: "Essential hypertension (disorder)", chronic: true, minAge: 25,
    p: (y, b) => (y < 25 ? 0 : Math.min(0.7, (y - 25) / 80 + (b.bmi >= 30 ? 0.1 : 0))) },
  { code: "44054006", display: "Diabetes mellitus type 2 (disorder)", chronic: true, minAge: 30,
    p: (y, b) => (y < 30 ? 0 : Math.min(0.3, (y - 30) / 250 + (b.bmi >= 30 ? 0.08 : 0))) },
  { code: "55822004", display: "Hyperlipidemia (disorder)", chronic: true, minAge: 35,
    p: (y) => (y < 35 ? 0 : Math.min(0.45, (y - 35) / 90)) },
  { code: "162864005", display: "Body mass index 30+ - obesity (finding)", chronic: true, minAge: 18,
    p: (y, b) => (adult(y) && b.bmi >= 30 ? 1 : 0) },
  { code: "195967001", display: "Asthma (disorder)", chronic: true, minAge: 2, p: (y) => (y < 2 ? 0 : 0.08) },
  { code: "53741008", display: "Coronary arteriosclerosis (disorder)", chronic: true, minAge: 45,
    p: (y, b) => (y < 45 ? 0 : Math.min(0.25, (y - 45) / (b.sex === "male" ? 160 : 260))) },
  { code: "239873007", display: "Osteoarthritis of knee (disorder)", chronic: true, minAge: 50,
    p: (y) => (y < 50 ? 0 : Math.min(0.35, (y - 50) / 100)) },
  { code: "64859006", display: "Osteoporosis (disorder)", chronic: true, minAge: 50,
    p: (y, b) => (y < 50 ? 0 : b.sex === "female" ? Math.min(0.3, (y - 50) / 110) : Math.min(0.06, (y - 50) / 500)) },
  { code: "266569009", display: "Benign prostatic hyperplasia (disorder)", chronic: true, minAge: 45,
    p: (y, b) => (b.sex !== "male" || y < 45 ? 0 : Math.min(0.6, (y - 45) / 60)) },
  { code: "72892002", display: "Normal pregnancy (finding)", chronic: false, minAge: 18,
    p: (y, b) => (b.sex === "female" && y >= 18 && y < 45 ? 0.04 : 0) },
  { code: "65363002", display: "Otitis media (disorder)", chronic: false, minAge: 0.5,
    p: (y) => (y >= 0.5 && y < 10 ? 0.15 : 0) },
  { code: "195662009", display: "Acute viral pharyngitis (disorder)", chronic: false, minAge: 2, p: (y) => (y < 2 ? 0 : 0.1) },
  { code: "444814009", display: "Viral sinusitis (disorder)", chronic: false, minAge: 5, p: (y) => (y < 5 ? 0 : 0.12) },
  { code: "10509002", display: "Acute bronchitis (disorder)", chronic: false, minAge: 1, p: (y) => (y < 1 ? 0 : 0.06) },
];

export interface ConditionDraw {
  def: ConditionDef;
  onsetDay: number;
  abatementDay?: number;
  minute: number;
}

/** Which conditions this patient has, with onset days; deterministic for the stream. */
export function drawConditions(r: Rng, body: Body, birthDay: number, refDay: number): ConditionDraw[] {
  const years = body.ageDays / 365.2425;
  const out: ConditionDraw[] = [];
  for (const def of CONDITIONS) {
    // Always draw, so one condition's outcome never shifts the next one's randomness.
    const u = r.next();
    const position = r.next();
    const minute = r.int(8 * 60, 18 * 60 - 1);
    const length = r.int(7, 21);
    if (u >= def.p(years, body)) continue;
    const earliest = birthDay + Math.ceil(def.minAge * 365.2425);
    if (def.code === "72892002") {
      out.push({ def, onsetDay: Math.max(earliest, refDay - Math.floor(position * 250)), minute });
    } else if (def.chronic) {
      out.push({ def, onsetDay: earliest + Math.floor(position * Math.max(0, refDay - earliest)), minute });
    } else {
      // Acute: an episode in the last two years; resolved if it ended before the reference date.
      const onsetDay = Math.max(earliest, refDay - Math.floor(position * 730));
      const end = onsetDay + length;
      out.push({ def, onsetDay, minute, ...(end < refDay ? { abatementDay: end } : {}) });
    }
  }
  return out;
}

const CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category";

export function conditionResource(id: string, patientId: string, meta: Meta, d: ConditionDraw): Condition {
  const onset = dateTimeAt(d.onsetDay, d.minute);
  const resolved = d.abatementDay !== undefined;
  const c: Condition = {
    resourceType: "Condition",
    id,
    meta,
    clinicalStatus: { coding: [{ system: CLINICAL, code: resolved ? "resolved" : "active" }] },
    verificationStatus: { coding: [{ system: VERIFICATION, code: "confirmed" }] },
    category: [
      d.def.chronic
        ? { coding: [{ system: CATEGORY, code: "problem-list-item", display: "Problem List Item" }] }
        : { coding: [{ system: CATEGORY, code: "encounter-diagnosis", display: "Encounter Diagnosis" }] },
    ],
    code: { coding: [{ system: SNOMED, code: d.def.code, display: d.def.display }], text: d.def.display },
    subject: { reference: `Patient/${patientId}` },
    onsetDateTime: onset,
    recordedDate: onset,
  };
  if (d.abatementDay !== undefined) c.abatementDateTime = dateTimeAt(d.abatementDay, d.minute);
  return c;
}

export const hasCondition = (draws: readonly ConditionDraw[], code: string) => draws.some((d) => d.def.code === code);
