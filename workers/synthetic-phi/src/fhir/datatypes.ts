import { z } from "zod";

/**
 * Zod schemas of the FHIR R4 data types we emit (https://hl7.org/fhir/R4/datatypes.html),
 * strict: an element we do not model is an error, so tests catch stray fields.
 * Regexes are the R4 primitive definitions (narrowed where we always emit more).
 */
export const FhirId = z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/);
export const FhirUri = z.string().regex(/^\S+$/);
export const FhirCode = z.string().regex(/^[^\s]+( [^\s]+)*$/);
/** R4 `date`, full precision (we never emit partial dates). */
export const FhirDate = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/);
/** R4 `dateTime` / `instant` as we emit them: seconds and a UTC `Z`. */
export const FhirInstant = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$/);
export const FhirDecimal = z.number().finite();

export const Coding = z.strictObject({
  system: FhirUri,
  code: FhirCode,
  display: z.string().min(1).optional(),
});
export type Coding = z.infer<typeof Coding>;

export const CodeableConcept = z.strictObject({
  coding: z.array(Coding).min(1),
  text: z.string().min(1).optional(),
});
export type CodeableConcept = z.infer<typeof CodeableConcept>;

export const Identifier = z.strictObject({
  use: z.enum(["usual", "official", "temp", "secondary", "old"]).optional(),
  type: CodeableConcept.optional(),
  system: FhirUri,
  value: z.string().min(1),
});
export type Identifier = z.infer<typeof Identifier>;

export const Reference = z.strictObject({
  reference: z.string().regex(/^(Patient|Observation|Condition)\/[A-Za-z0-9\-.]{1,64}$/).optional(),
  identifier: Identifier.optional(),
  display: z.string().min(1).optional(),
});
export type Reference = z.infer<typeof Reference>;

export const Quantity = z.strictObject({
  value: FhirDecimal,
  unit: z.string().min(1),
  system: z.literal("http://unitsofmeasure.org"),
  code: FhirCode,
});
export type Quantity = z.infer<typeof Quantity>;

export const Meta = z.strictObject({
  profile: z.array(FhirUri).min(1).optional(),
  security: z.array(Coding).min(1),
  tag: z.array(Coding).min(1),
});
export type Meta = z.infer<typeof Meta>;

export const HumanName = z.strictObject({
  use: z.enum(["official", "usual", "nickname"]),
  family: z.string().min(1),
  given: z.array(z.string().min(1)).min(1),
});

export const ContactPoint = z.strictObject({
  system: z.enum(["phone", "email"]),
  value: z.string().min(1),
  use: z.enum(["home", "work", "mobile"]),
});

export const Address = z.strictObject({
  use: z.literal("home"),
  type: z.literal("physical"),
  line: z.array(z.string().min(1)).min(1),
  city: z.string().min(1),
  state: z.string().length(2),
  postalCode: z.string().min(1),
  country: z.literal("US"),
});
