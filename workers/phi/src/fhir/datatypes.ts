import { z } from "zod";

/**
 * The FHIR R4 data types we accept (a subset of https://hl7.org/fhir/R4/datatypes.html).
 * Objects are strict: an element we do not know is rejected with a 400 rather than
 * stored unvalidated (documented in the README). Every string and array is bounded so
 * a hostile body cannot grow without limit; extensions nest at most two levels.
 */
export const MAX_STRING = 4096;

export const fhirString = z.string().min(1).max(MAX_STRING).regex(/\S/, "must not be blank");
export const fhirUri = z.string().min(1).max(1024).regex(/^\S+$/, "must be a URI");
export const fhirCode = z.string().min(1).max(256).regex(/^[^\s]+( [^\s]+)*$/, "must be a code");
export const fhirId = z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/, "must be a FHIR id");
export const fhirBoolean = z.boolean();
export const fhirDecimal = z.number().finite();
export const fhirInteger = z.number().int().min(-2147483648).max(2147483647);

/** A calendar check on top of the regex: 2023-02-30 matches the pattern but is not a date. */
function realDate(s: string): boolean {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(s);
  if (!m?.[3]) return true;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d;
}

const YEAR = "([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)";
const MONTH_DAY = "(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?";
const TIME = "T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))";
/** R4 `date`: YYYY, YYYY-MM or YYYY-MM-DD. */
export const fhirDate = z.string().regex(new RegExp(`^${YEAR}${MONTH_DAY}$`), "must be a FHIR date").refine(realDate, "not a calendar date");
/** R4 `dateTime`: a partial date, or a full date and time with a zone. */
export const fhirDateTime = z
  .string()
  .regex(new RegExp(`^${YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(${TIME})?)?)?$`), "must be a FHIR dateTime")
  .refine(realDate, "not a calendar date");
/** R4 `instant`: always to the second, always with a zone. */
export const fhirInstant = z
  .string()
  .regex(new RegExp(`^${YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])${TIME}$`), "must be a FHIR instant")
  .refine(realDate, "not a calendar date");

const list = <T extends z.ZodType>(item: T, max = 50) => z.array(item).min(1).max(max);

export const Coding = z.strictObject({
  system: fhirUri.optional(),
  version: fhirString.optional(),
  code: fhirCode.optional(),
  display: fhirString.optional(),
  userSelected: z.boolean().optional(),
});
export const CodeableConcept = z.strictObject({ coding: list(Coding).optional(), text: fhirString.optional() });
export const Period = z.strictObject({ start: fhirDateTime.optional(), end: fhirDateTime.optional() });
export const Quantity = z.strictObject({
  value: fhirDecimal.optional(),
  comparator: z.enum(["<", "<=", ">=", ">"]).optional(),
  unit: fhirString.optional(),
  system: fhirUri.optional(),
  code: fhirCode.optional(),
});
export const Reference = z.strictObject({
  reference: fhirString.optional(),
  type: fhirUri.optional(),
  display: fhirString.optional(),
});
export const Identifier = z.strictObject({
  use: z.enum(["usual", "official", "temp", "secondary", "old"]).optional(),
  type: CodeableConcept.optional(),
  system: fhirUri.optional(),
  value: fhirString.optional(),
  period: Period.optional(),
  assigner: Reference.optional(),
});

/** Extension value[x] types we accept (the ones US Core and Synthea use). */
const extensionValues = {
  valueString: fhirString.optional(),
  valueCode: fhirCode.optional(),
  valueBoolean: z.boolean().optional(),
  valueInteger: fhirInteger.optional(),
  valueDecimal: fhirDecimal.optional(),
  valueDate: fhirDate.optional(),
  valueDateTime: fhirDateTime.optional(),
  valueUri: fhirUri.optional(),
  valueCoding: Coding.optional(),
  valueCodeableConcept: CodeableConcept.optional(),
  valueIdentifier: Identifier.optional(),
  valueReference: Reference.optional(),
  valueQuantity: Quantity.optional(),
  valuePeriod: Period.optional(),
};

/** Only one value[x] per extension (FHIR ext-1 and the choice-type rule). */
function oneValue(e: Record<string, unknown>): boolean {
  return Object.keys(e).filter((k) => k.startsWith("value") && e[k] !== undefined).length <= 1;
}

const AddressFields = {
  use: z.enum(["home", "work", "temp", "old", "billing"]).optional(),
  type: z.enum(["postal", "physical", "both"]).optional(),
  text: fhirString.optional(),
  line: list(fhirString, 10).optional(),
  city: fhirString.optional(),
  district: fhirString.optional(),
  state: fhirString.optional(),
  postalCode: fhirString.optional(),
  country: fhirString.optional(),
  period: Period.optional(),
};
const PlainAddress = z.strictObject(AddressFields);

const LeafExtension = z
  .strictObject({ url: fhirUri, ...extensionValues, valueAddress: PlainAddress.optional() })
  .refine(oneValue, "an extension has at most one value[x]");
/** Extensions nest two levels (complex extensions such as us-core-race or geolocation). */
export const Extension = z
  .strictObject({ url: fhirUri, ...extensionValues, valueAddress: PlainAddress.optional(), extension: list(LeafExtension, 20).optional() })
  .refine(oneValue, "an extension has at most one value[x]");
const extensions = list(Extension, 50).optional();

export const Address = z.strictObject({ ...AddressFields, extension: extensions });
export const HumanName = z.strictObject({
  use: z.enum(["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"]).optional(),
  text: fhirString.optional(),
  family: fhirString.optional(),
  given: list(fhirString, 10).optional(),
  prefix: list(fhirString, 10).optional(),
  suffix: list(fhirString, 10).optional(),
  period: Period.optional(),
});
export const ContactPoint = z.strictObject({
  system: z.enum(["phone", "fax", "email", "pager", "url", "sms", "other"]).optional(),
  value: fhirString.optional(),
  use: z.enum(["home", "work", "temp", "old", "mobile"]).optional(),
  rank: z.number().int().min(1).optional(),
  period: Period.optional(),
});
export const Meta = z.strictObject({
  // versionId and lastUpdated are the server's: accepted on input and then replaced.
  versionId: fhirId.optional(),
  lastUpdated: fhirInstant.optional(),
  source: fhirUri.optional(),
  profile: list(fhirUri, 20).optional(),
  security: list(Coding, 20).optional(),
  tag: list(Coding, 20).optional(),
});
export const Narrative = z.strictObject({
  status: z.enum(["generated", "extensions", "additional", "empty"]),
  div: z.string().min(1).max(65536).regex(/^<div[\s>]/, "must be an XHTML div"),
});

/** Elements every resource we accept may carry. */
export const resourceBase = {
  id: fhirId.optional(),
  meta: Meta.optional(),
  language: fhirCode.optional(),
  text: Narrative.optional(),
  extension: extensions,
};
export { extensions, list };
