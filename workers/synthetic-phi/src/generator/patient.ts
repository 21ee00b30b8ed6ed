import type { Condition } from "../fhir/condition";
import type { Meta } from "../fhir/datatypes";
import type { Observation } from "../fhir/observation";
import type { Patient } from "../fhir/patient";
import { drawBody } from "./body";
import { conditionResource, drawConditions } from "./conditions";
import { GENERATOR, HTEST, SYSTEMS } from "./constants";
import { dateTimeAt, fromEpochDay, toEpochDay } from "./dates";
import { identifiers, identity } from "./identity";
import { Rng, streamWords, uuidFromWords } from "./random";
import { drawVitals, vitalObservations } from "./vitals";

export interface GenerationParams {
  seed: string;
  /** `YYYY-MM-DD`: every date is computed from it, never from the clock. */
  referenceDate: string;
  /** Emit the vital-sign Observations (the benchmark compares with and without). */
  observations: boolean;
}

export interface PatientRecord {
  patient: Patient;
  observations: Observation[];
  conditions: Condition[];
}

/** meta of every resource: HTEST security label, generator and seed tags. */
export function resourceMeta(seed: string): Meta {
  return {
    security: [HTEST],
    tag: [
      { system: SYSTEMS.generator, code: GENERATOR },
      { system: SYSTEMS.seed, code: seed },
    ],
  };
}

/** Deterministic id of a patient's resource (`kind` names it within the patient). */
export function resourceId(seed: string, index: number, kind: string): string {
  return uuidFromWords(streamWords(seed, index, `id:${kind}`));
}

/**
 * Patient `index` of `seed`: a pure function of (params, index). Each part
 * draws from its own stream (body, identity, conditions, visit), so patient N
 * needs no patient before it and turning Observations off changes nothing else.
 */
export function generatePatient(p: GenerationParams, index: number): PatientRecord {
  const { seed } = p;
  const refDay = toEpochDay(p.referenceDate);
  const body = drawBody(new Rng(streamWords(seed, index, "body")));
  const birthDay = refDay - body.ageDays;
  const years = body.ageDays / 365.2425;
  const who = identity(streamWords(seed, index, "identity"), body.sex, Math.floor(years));
  const meta = resourceMeta(seed);
  const patientId = resourceId(seed, index, "patient");

  const patient: Patient = {
    resourceType: "Patient",
    id: patientId,
    meta,
    identifier: identifiers(seed, index, who),
    active: true,
    name: who.name,
    telecom: who.telecom,
    gender: body.sex,
    birthDate: fromEpochDay(birthDay),
    address: who.address,
  };
  if (who.maritalStatus) patient.maritalStatus = who.maritalStatus;

  const draws = drawConditions(new Rng(streamWords(seed, index, "conditions")), body, birthDay, refDay);
  const conditions = draws.map((d, k) => conditionResource(resourceId(seed, index, `condition:${k}`), patientId, meta, d));

  let observations: Observation[] = [];
  if (p.observations) {
    const r = new Rng(streamWords(seed, index, "visit"));
    // The latest visit: within the year before the reference date, never before birth.
    const visitDay = refDay - Math.min(body.ageDays, r.int(0, 364));
    const effective = dateTimeAt(visitDay, r.int(8 * 60, 18 * 60 - 1));
    const values = drawVitals(r, body, draws);
    observations = vitalObservations({ id: (k) => resourceId(seed, index, `vital:${k}`) }, patientId, meta, effective, body, values);
  }
  return { patient, observations, conditions };
}

/** The resources of one patient in output order. */
export function resourcesOf(r: PatientRecord): (Patient | Observation | Condition)[] {
  return [r.patient, ...r.observations, ...r.conditions];
}
