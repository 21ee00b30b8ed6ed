import { z } from "zod";
import { CodeableConcept, FhirId, FhirInstant, Meta, Quantity, Reference } from "./datatypes";

const Component = z.strictObject({ code: CodeableConcept, valueQuantity: Quantity });

/**
 * FHIR R4 Observation as we emit vital signs (https://hl7.org/fhir/R4/observation-vitalsigns.html):
 * status, the vital-signs category, a LOINC code, a subject, an effective time and a UCUM
 * quantity, or components for the blood-pressure panel (vs-2: one or the other).
 */
export const ObservationSchema = z
  .strictObject({
    resourceType: z.literal("Observation"),
    id: FhirId,
    meta: Meta.required({ profile: true }),
    status: z.literal("final"),
    category: z.array(CodeableConcept).min(1),
    code: CodeableConcept,
    subject: Reference.required({ reference: true }),
    effectiveDateTime: FhirInstant,
    valueQuantity: Quantity.optional(),
    component: z.array(Component).min(1).optional(),
  })
  .refine((o) => (o.valueQuantity === undefined) !== (o.component === undefined), {
    message: "an Observation has a value or components (vs-2)",
  });
export type Observation = z.infer<typeof ObservationSchema>;
