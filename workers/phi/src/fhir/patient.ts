import { z } from "zod";
import {
  Address,
  CodeableConcept,
  ContactPoint,
  fhirBoolean,
  fhirDate,
  fhirDateTime,
  fhirInteger,
  HumanName,
  Identifier,
  list,
  Reference,
  resourceBase,
} from "./datatypes";

/** FHIR R4 Patient, the subset we accept (https://hl7.org/fhir/R4/patient.html). */
export const PatientSchema = z
  .strictObject({
    resourceType: z.literal("Patient"),
    ...resourceBase,
    identifier: list(Identifier, 20).optional(),
    active: fhirBoolean.optional(),
    name: list(HumanName, 20).optional(),
    telecom: list(ContactPoint, 20).optional(),
    gender: z.enum(["male", "female", "other", "unknown"]).optional(),
    birthDate: fhirDate.optional(),
    deceasedBoolean: fhirBoolean.optional(),
    deceasedDateTime: fhirDateTime.optional(),
    address: list(Address, 20).optional(),
    maritalStatus: CodeableConcept.optional(),
    multipleBirthBoolean: fhirBoolean.optional(),
    multipleBirthInteger: fhirInteger.optional(),
    communication: list(z.strictObject({ language: CodeableConcept, preferred: fhirBoolean.optional() }), 10).optional(),
    generalPractitioner: list(Reference, 10).optional(),
    managingOrganization: Reference.optional(),
  })
  // Choice types: one of deceased[x], one of multipleBirth[x] (FHIR R4 choice rule).
  .refine((p) => p.deceasedBoolean === undefined || p.deceasedDateTime === undefined, "one deceased[x] at most")
  .refine((p) => p.multipleBirthBoolean === undefined || p.multipleBirthInteger === undefined, "one multipleBirth[x] at most");

export type Patient = z.infer<typeof PatientSchema>;
