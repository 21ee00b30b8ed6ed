import { z } from "@hono/zod-openapi";
import { BundleSchema } from "../fhir/bundle";
import { ReferenceDate, Seed } from "./common";

const wholeNumber = z.string().regex(/^[0-9]{1,10}$/, "a whole number").transform(Number);

/** Query of `GET /v1/synthetic/patients`; unknown parameters are refused, not ignored. */
export const PatientsQuery = z.strictObject({
  count: wholeNumber.pipe(z.number().int().min(1)).optional().openapi({ param: { name: "count", in: "query" }, example: "10" }),
  seed: Seed.optional().openapi({ param: { name: "seed", in: "query" } }),
  offset: wholeNumber.pipe(z.number().int().min(0)).optional().openapi({ param: { name: "offset", in: "query" }, example: "0" }),
  format: z.enum(["bundle", "ndjson"]).optional().openapi({ param: { name: "format", in: "query" } }),
  reference_date: ReferenceDate.optional().openapi({ param: { name: "reference_date", in: "query" } }),
  observations: z.enum(["true", "false"]).optional().openapi({ param: { name: "observations", in: "query" } }),
});

export const BundleResponse = BundleSchema.openapi("SyntheticBundle");
