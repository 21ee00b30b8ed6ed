import { z } from "@hono/zod-openapi";
import { codeSpec } from "../codes";
import { Reason } from "./device";

export const Limit = z
  .object({ low: z.number().finite().optional(), high: z.number().finite().optional() })
  .strict()
  .refine((l) => l.low !== undefined || l.high !== undefined, { message: "set low, high or both" })
  .refine((l) => l.low === undefined || l.high === undefined || l.low < l.high, { message: "low must be below high" });
export type Limit = z.infer<typeof Limit>;
export type Limits = Record<string, Limit>;

export const LimitsSchema = z
  .record(z.string().max(20), Limit)
  .superRefine((rec, ctx) => {
    const keys = Object.keys(rec);
    if (keys.length > 50) ctx.addIssue({ code: "custom", message: "too many codes" });
    for (const k of keys) if (!codeSpec(k)) ctx.addIssue({ code: "custom", path: [k], message: "unsupported code" });
  });

export const ThresholdsInput = z.object({ limits: LimitsSchema, reason: Reason }).strict().openapi("ThresholdsInput");

export const Thresholds = z
  .object({
    device_id: z.string(),
    version: z.number().int(),
    limits: z.record(z.string(), z.object({ low: z.number().optional(), high: z.number().optional() })),
    set_at: z.string().nullable(),
    set_by: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .openapi("Thresholds");
export type Thresholds = z.infer<typeof Thresholds>;
