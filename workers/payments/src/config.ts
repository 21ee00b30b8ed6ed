import { z } from "zod";
import { EnvironmentName, envInt, parseConfig } from "../../../shared/config";

const Currencies = z
  .string()
  .regex(/^[A-Z]{3}(,[A-Z]{3})*$/)
  .transform((s) => s.split(","));

/** Everything the worker reads from env, validated once per isolate (names only in errors, never values). */
const ConfigSchema = z.object({
  ENVIRONMENT: EnvironmentName,
  CARD_ENCRYPTION_KEYS: z.string().min(1),
  CARD_FINGERPRINT_KEY: z.string().min(32),
  /** Largest single payment, in minor units. */
  PAYMENT_MAX_AMOUNT: envInt(99_999_999),
  /** ISO 4217 codes accepted (alphabetic, upper case). */
  PAYMENT_CURRENCIES: Currencies.optional().transform((v) => v ?? ["USD", "EUR", "GBP"]),
  /** Refunds strictly above this (minor units) wait for a second principal's approval (SOX segregation of duties). */
  REFUND_APPROVAL_THRESHOLD: envInt(50_000),
});

export type PaymentsConfig = z.infer<typeof ConfigSchema>;

export function paymentsConfig(env: object): PaymentsConfig {
  return parseConfig(ConfigSchema, env);
}
