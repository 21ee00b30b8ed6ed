import { z } from "zod";
import { ConditionSchema } from "./condition";
import { FhirId, FhirInstant, Meta } from "./datatypes";
import { ObservationSchema } from "./observation";
import { PatientSchema } from "./patient";
import { ProvenanceSchema } from "./provenance";

export const ResourceSchema = z.union([PatientSchema, ObservationSchema, ConditionSchema, ProvenanceSchema]);
export type Resource = z.infer<typeof ResourceSchema>;

/** FHIR R4 Bundle of type `collection` (https://hl7.org/fhir/R4/bundle.html); bdl-7: fullUrls unique. */
export const BundleSchema = z
  .strictObject({
    resourceType: z.literal("Bundle"),
    id: FhirId,
    meta: Meta,
    type: z.literal("collection"),
    timestamp: FhirInstant,
    entry: z.array(z.strictObject({ fullUrl: z.string().regex(/^urn:uuid:[0-9a-f-]{36}$/), resource: ResourceSchema })),
  })
  .refine((b) => new Set(b.entry.map((e) => e.fullUrl)).size === b.entry.length, {
    message: "fullUrl must be unique in a bundle (bdl-7)",
  });
export type Bundle = z.infer<typeof BundleSchema>;
