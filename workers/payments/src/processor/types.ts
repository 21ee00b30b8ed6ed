/**
 * What the payments worker needs from a card processor. The simulated one
 * implements it for development and tests; a real acquirer adapter would too.
 * Card data crosses this boundary only for `authorize` and is never returned.
 */
export type DeclineCode = "card_declined" | "insufficient_funds" | "expired_card";

export interface AuthorizeRequest {
  /** Our payment id, sent as the processor's idempotency reference. */
  reference: string;
  amount: number;
  currency: string;
  card: { number: string; expMonth: number; expYear: number; cvc?: string | undefined };
}

export type AuthorizeResult = { approved: true; processorRef: string } | { approved: false; declineCode: DeclineCode };

/**
 * A call to a processor whose book is kept in our own database (the simulator): decided in memory, with the
 * record of it handed back as one statement that takes effect only where `guard` (an SQL condition) holds.
 * The executor runs that statement in the Idempotency-Key claim's own batch, guarded by the claim, so the
 * book records the call exactly when the key was claimed (never for a duplicate): one round trip for both.
 */
export interface StagedCall {
  result: AuthorizeResult;
  record: (guard: string) => D1PreparedStatement;
}

export interface CardProcessor {
  authorize(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult>;
  /**
   * Authorize and, when approved, capture the full amount in one call (an acquirer's "sale", what Stripe does
   * for automatic capture): one round trip to the processor instead of two. Declined: nothing is captured.
   */
  sale(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult>;
  /**
   * Only a processor whose book is in our database has this: `authorize` or `sale` decided now, recorded by the
   * returned statement (throws ProcessorError as the call would). A remote processor is called after the claim.
   */
  stage?(operation: "authorize" | "sale", req: AuthorizeRequest, now: Date): StagedCall;
  capture(processorRef: string, amount: number, currency: string, now: Date): Promise<void>;
  void(processorRef: string, amount: number, currency: string, now: Date): Promise<void>;
  refund(processorRef: string, amount: number, currency: string, now: Date): Promise<void>;
}

/** The processor did not answer or failed: nothing is known to have moved. */
export class ProcessorError extends Error {
  constructor() {
    super("processor_error");
    this.name = "ProcessorError";
  }
}
