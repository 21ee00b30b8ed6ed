import { z } from "zod";
import { CodeableConcept, FhirId, FhirInstant, FhirUri, Meta, Reference } from "./datatypes";

/** FHIR R4 Provenance of one generated bundle (https://hl7.org/fhir/R4/provenance.html). */
export const ProvenanceSchema = z.strictObject({
  resourceType: z.literal("Provenance"),
  id: FhirId,
  meta: Meta,
  target: z.array(Reference.required({ reference: true })).min(1),
  occurredDateTime: FhirInstant,
  recorded: FhirInstant,
  policy: z.array(FhirUri).min(1),
  activity: CodeableConcept,
  agent: z.array(z.strictObject({ type: CodeableConcept, who: Reference })).min(1),
  entity: z.array(z.strictObject({ role: z.literal("source"), what: Reference })).min(1),
});
export type Provenance = z.infer<typeof ProvenanceSchema>;
