import { z } from "@hono/zod-openapi";
import { ProblemSchema, problemResponse } from "../../../../shared/openapi";
import { containsPan } from "../domain/card";

// RFC 9457 problem details, with our stable `code`: one schema for every worker (shared/openapi.ts).
export { ProblemSchema };
const problem = problemResponse;

/** Error responses every route may give, for the OpenAPI document. */
export const errorResponses = {
  400: problem("Invalid request"),
  401: problem("Not through the gateway"),
  403: problem("Not allowed"),
  404: problem("No such resource"),
  503: problem("Audit trail or storage unavailable (audit_unavailable, storage_unavailable): nothing was done"),
} as const;

export const writeErrorResponses = {
  ...errorResponses,
  409: problem("Conflict: illegal transition, or a request with this key is in flight (retryable)"),
  422: problem("Unprocessable: business rule refused it, or the key was used with another request"),
  502: problem("The card processor failed; nothing was captured, retry with the same key"),
} as const;

export { problem };

/** Stripe's rule: 1-255 characters; required on every POST. */
export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, "printable ASCII without spaces")
    .openapi({ description: "Unique per operation; a retry with the same key and body replays the first answer." }),
});

/** Free text that must never carry a card number into a plaintext column (PCI-DSS 3.4.1). */
export const safeText = (max: number) =>
  z
    .string()
    .max(max)
    // An over-long text is refused by max() already: it is not scanned (the scan's cost grows with its length).
    .refine((s) => s.length > max || !containsPan(s), { message: "must not contain a card number" });

export const idParam = (prefix: string) =>
  z.object({ id: z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9_-]{8,40}$`), "not a valid id") });

/** ISO 8601 UTC timestamp. */
export const Timestamp = z.string().openapi({ format: "date-time" });

export const MinorUnits = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
