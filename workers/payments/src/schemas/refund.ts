import { z } from "@hono/zod-openapi";
import { MinorUnits, safeText, Timestamp } from "./common";

export const CreateRefundBody = z
  .object({
    amount: MinorUnits.openapi({ description: "Minor units; the total refunded never exceeds what was captured" }),
    reason: safeText(500).pipe(z.string().min(1)),
  })
  .strict()
  .openapi("CreateRefund");

export const ApproveRefundBody = z.object({ note: safeText(500).optional() }).strict().openapi("ApproveRefund");

export const REFUND_STATUSES = ["pending_approval", "succeeded"] as const;

export const RefundSchema = z
  .object({
    id: z.string(),
    object: z.literal("refund"),
    payment: z.string(),
    amount: z.number().int(),
    currency: z.string(),
    reason: z.string(),
    status: z.enum(REFUND_STATUSES),
    requested_by: z.string(),
    approved_by: z.string().nullable(),
    created_at: Timestamp,
    approved_at: Timestamp.nullable(),
  })
  .openapi("Refund");
export type RefundView = z.infer<typeof RefundSchema>;
