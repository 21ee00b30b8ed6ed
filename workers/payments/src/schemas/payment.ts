import { z } from "@hono/zod-openapi";
import { containsPan } from "../domain/card";
import { PAYMENT_STATUSES } from "../domain/state-machine";
import { MinorUnits, safeText, Timestamp } from "./common";
import { CardInput } from "./payment-method";

const Metadata = z
  .record(z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/), z.string().max(500))
  // Counted before anything is scanned for card numbers, so a body of thousands of entries costs no scan.
  .refine((m) => Object.keys(m).length <= 20, { message: "at most 20 keys", abort: true })
  .refine((m) => !Object.keys(m).some((k) => k.length <= 40 && containsPan(k)), { message: "keys must not contain a card number" })
  .refine((m) => !Object.values(m).some((v) => v.length <= 500 && containsPan(v)), { message: "values must not contain a card number" });

export const CreatePaymentBody = z
  .object({
    amount: MinorUnits.openapi({ description: "Integer minor units (cents), at most the configured maximum" }),
    currency: z.string().regex(/^[A-Za-z]{3}$/).openapi({ description: "ISO 4217 alphabetic code" }),
    payment_method: z.string().regex(/^pm_[A-Za-z0-9_-]{8,40}$/).optional(),
    card: CardInput.optional(),
    capture: z.enum(["automatic", "manual"]).default("automatic"),
    description: safeText(500).optional(),
    metadata: Metadata.optional(),
  })
  .strict()
  .refine((b) => (b.payment_method === undefined) !== (b.card === undefined), {
    message: "exactly one of payment_method and card is required",
  })
  .openapi("CreatePayment");
export type CreatePaymentInput = z.infer<typeof CreatePaymentBody>;

export const CaptureBody = z
  .object({ amount: MinorUnits.optional().openapi({ description: "Capture less than authorized; the rest is released" }) })
  .strict()
  .openapi("CapturePayment");

export const VoidBody = z.object({ reason: safeText(200).optional() }).strict().openapi("VoidPayment");

export const PaymentSchema = z
  .object({
    id: z.string(),
    object: z.literal("payment"),
    status: z.enum(PAYMENT_STATUSES),
    amount: z.number().int(),
    amount_captured: z.number().int(),
    amount_refunded: z.number().int(),
    amount_refund_pending: z.number().int(),
    currency: z.string(),
    capture_method: z.enum(["automatic", "manual"]),
    payment_method: z.string(),
    decline_code: z.string().nullable(),
    description: z.string().nullable(),
    metadata: z.record(z.string(), z.string()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Payment");
export type PaymentView = z.infer<typeof PaymentSchema>;

export const ListPaymentsQuery = z
  .object({
    status: z.enum(PAYMENT_STATUSES).optional(),
    created_gte: z.iso.datetime().optional(),
    created_lt: z.iso.datetime().optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().regex(/^[A-Za-z0-9_-]{1,200}$/).optional(),
  })
  .strict();

export const PaymentListSchema = z
  .object({ object: z.literal("list"), data: z.array(PaymentSchema), next_cursor: z.string().nullable() })
  .openapi("PaymentList");
