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

/** What moves an existing payment from one version to the next at the processor. */
export type TransitionOperation = "capture" | "void" | "refund";

export interface TransitionCall {
  /**
   * `<payment id>:v<version>`: the payment and the version this operation moves it from (`transitionReference`).
   * Our transition guard (`payment_transitions`, one row per payment and version) lets at most one operation per
   * version commit, so this names the one attempt that can: two requests racing from one version, and the retry of
   * one whose commit failed, carry the same reference. A remote adapter must send it as the processor's idempotency
   * key (README "Test cards": what a remote adapter must do).
   */
  reference: string;
  /** The processor's id of the authorization (`processor_ref`). */
  processorRef: string;
  amount: number;
  currency: string;
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
  /**
   * Only a processor whose book is in our database has this: a capture, void or refund recorded by the returned
   * statement, which the transition's own commit batch runs. A lost race or a failed commit then rolls it back with
   * the transition: the book never holds an operation our payment does not. A remote processor is called instead
   * (the three methods below), after the claim and before the commit, with `call.reference` as its idempotency key.
   */
  stageTransition?(operation: TransitionOperation, call: TransitionCall, now: Date): D1PreparedStatement;
  capture(call: TransitionCall, now: Date): Promise<void>;
  void(call: TransitionCall, now: Date): Promise<void>;
  refund(call: TransitionCall, now: Date): Promise<void>;
}

/** The processor did not answer or failed: nothing is known to have moved. */
export class ProcessorError extends Error {
  constructor() {
    super("processor_error");
    this.name = "ProcessorError";
  }
}
