import { z } from "zod";
import { Address, CodeableConcept, ContactPoint, FhirDate, FhirId, HumanName, Identifier, Meta } from "./datatypes";

/** FHIR R4 Patient, the elements we emit (https://hl7.org/fhir/R4/patient.html). */
export const PatientSchema = z.strictObject({
  resourceType: z.literal("Patient"),
  id: FhirId,
  meta: Meta,
  identifier: z.array(Identifier).min(1),
  active: z.literal(true),
  name: z.array(HumanName).min(1),
  telecom: z.array(ContactPoint).min(1),
  gender: z.enum(["male", "female"]),
  birthDate: FhirDate,
  address: z.array(Address).min(1),
  maritalStatus: CodeableConcept.optional(),
});
export type Patient = z.infer<typeof PatientSchema>;
