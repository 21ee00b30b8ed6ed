import { z } from "zod";
import { CodeableConcept, FhirId, FhirInstant, Meta, Reference } from "./datatypes";

/** FHIR R4 Condition, the elements we emit (https://hl7.org/fhir/R4/condition.html). */
export const ConditionSchema = z
  .strictObject({
    resourceType: z.literal("Condition"),
    id: FhirId,
    meta: Meta,
    clinicalStatus: CodeableConcept,
    verificationStatus: CodeableConcept,
    category: z.array(CodeableConcept).min(1),
    code: CodeableConcept,
    subject: Reference.required({ reference: true }),
    onsetDateTime: FhirInstant,
    abatementDateTime: FhirInstant.optional(),
    recordedDate: FhirInstant,
  })
  // con-4: an abated condition is not active.
  .refine((c) => c.abatementDateTime === undefined || c.clinicalStatus.coding[0]?.code === "resolved", {
    message: "an abated condition must be resolved (con-4)",
  });
export type Condition = z.infer<typeof ConditionSchema>;
