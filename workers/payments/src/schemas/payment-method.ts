import { z } from "@hono/zod-openapi";
import { safeText, Timestamp } from "./common";

/** Raw card data: only ever in a request body, never echoed (PCI-DSS 3.3, 3.4). */
export const CardInput = z
  .object({
    number: z.string().min(1).max(40).openapi({ description: "Digits, spaces allowed; never returned" }),
    exp_month: z.number().int().min(1).max(12),
    exp_year: z.number().int().min(2000).max(2200),
    cvc: z.string().min(1).max(8).openapi({ description: "Used once for authorization; never stored" }),
  })
  .strict();

export const CreatePaymentMethodBody = CardInput.extend({ holder_name: safeText(100).optional() })
  .strict()
  .openapi("CreatePaymentMethod");

export const PaymentMethodSchema = z
  .object({
    id: z.string(),
    object: z.literal("payment_method"),
    brand: z.string(),
    last4: z.string(),
    exp_month: z.number().int(),
    exp_year: z.number().int(),
    fingerprint: z.string(),
    created_at: Timestamp,
  })
  .openapi("PaymentMethod");
export type PaymentMethodView = z.infer<typeof PaymentMethodSchema>;
