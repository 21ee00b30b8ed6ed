import { z } from "zod";
import {
  CodeableConcept,
  fhirBoolean,
  fhirDateTime,
  fhirInstant,
  fhirInteger,
  fhirString,
  Identifier,
  list,
  Period,
  Quantity,
  Reference,
  resourceBase,
} from "./datatypes";

/** `Patient/<id>`: the only subject we accept, so every Observation concerns one known patient. */
export const PATIENT_REFERENCE = /^Patient\/([A-Za-z0-9\-.]{1,64})$/;

const values = {
  valueQuantity: Quantity.optional(),
  valueCodeableConcept: CodeableConcept.optional(),
  valueString: fhirString.optional(),
  valueBoolean: fhirBoolean.optional(),
  valueInteger: fhirInteger.optional(),
  valueDateTime: fhirDateTime.optional(),
  valuePeriod: Period.optional(),
};
function oneValue(o: Record<string, unknown>): boolean {
  return Object.keys(o).filter((k) => k.startsWith("value") && o[k] !== undefined).length <= 1;
}

const Component = z
  .strictObject({
    code: CodeableConcept,
    ...values,
    dataAbsentReason: CodeableConcept.optional(),
    interpretation: list(CodeableConcept, 10).optional(),
  })
  .refine(oneValue, "one value[x] at most");

const ReferenceRange = z.strictObject({
  low: Quantity.optional(),
  high: Quantity.optional(),
  type: CodeableConcept.optional(),
  text: fhirString.optional(),
});

/** FHIR R4 Observation, the subset we accept (https://hl7.org/fhir/R4/observation.html). */
export const ObservationSchema = z
  .strictObject({
    resourceType: z.literal("Observation"),
    ...resourceBase,
    identifier: list(Identifier, 20).optional(),
    status: z.enum(["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"]),
    category: list(CodeableConcept, 10).optional(),
    code: CodeableConcept,
    subject: Reference.extend({ reference: z.string().regex(PATIENT_REFERENCE, "must be Patient/<id>") }),
    effectiveDateTime: fhirDateTime.optional(),
    effectiveInstant: fhirInstant.optional(),
    effectivePeriod: Period.optional(),
    issued: fhirInstant.optional(),
    ...values,
    dataAbsentReason: CodeableConcept.optional(),
    interpretation: list(CodeableConcept, 10).optional(),
    note: list(z.strictObject({ text: fhirString }), 10).optional(),
    bodySite: CodeableConcept.optional(),
    method: CodeableConcept.optional(),
    referenceRange: list(ReferenceRange, 10).optional(),
    component: list(Component, 20).optional(),
  })
  .refine(oneValue, "one value[x] at most")
  .refine(
    (o) => [o.effectiveDateTime, o.effectiveInstant, o.effectivePeriod].filter((v) => v !== undefined).length <= 1,
    "one effective[x] at most",
  );

export type Observation = z.infer<typeof ObservationSchema>;

/** The server id of the Patient an Observation concerns. */
export function subjectPatientId(o: Observation): string {
  return PATIENT_REFERENCE.exec(o.subject.reference)?.[1] ?? "";
}
