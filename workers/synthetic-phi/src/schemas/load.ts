import { z } from "@hono/zod-openapi";
import { ReferenceDate, Seed } from "./common";

export const LoadRequest = z
  .strictObject({
    count: z.number().int().min(1),
    seed: Seed,
    offset: z.number().int().min(0).optional(),
    reference_date: ReferenceDate.optional(),
  })
  .openapi("SyntheticLoadRequest");

const Loaded = z.object({ index: z.number().int(), id: z.string() });

export const LoadReport = z
  .object({
    seed: z.string(),
    offset: z.number().int(),
    count: z.number().int(),
    reference_date: z.string(),
    generator: z.string(),
    /** Written by this call. */
    created: z.array(Loaded),
    /** Already in phi under the same synthetic identifier (a rerun): not written twice. */
    existing: z.array(Loaded),
    failed: z.array(z.object({ index: z.number().int(), status: z.number().int(), code: z.string() })),
    /** Not tried because an earlier batch failed. */
    not_attempted: z.number().int(),
  })
  .openapi("SyntheticLoadReport");
export type LoadReport = z.infer<typeof LoadReport>;

export const Problem = z
  .object({ type: z.string(), title: z.string(), status: z.number().int(), code: z.string(), detail: z.string().optional() })
  .passthrough()
  .openapi("Problem");
