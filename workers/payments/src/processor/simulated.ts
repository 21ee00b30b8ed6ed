import { randomToken } from "../../../../shared/crypto";
import { expired } from "../domain/card";
import { ProcessorError, type AuthorizeRequest, type AuthorizeResult, type CardProcessor, type DeclineCode, type StagedCall, type TransitionCall, type TransitionOperation } from "./types";

/**
 * Documented test card numbers (README "Test cards"), after Stripe's. Any
 * other valid card is approved unless its expiry has passed.
 */
export const TEST_CARDS = {
  approve: "4242424242424242",
  declined: "4000000000000002",
  insufficientFunds: "4000000000009995",
  expired: "4000000000000069",
  processorError: "4000000000000119",
} as const;

const DECLINES: Readonly<Record<string, DeclineCode>> = {
  [TEST_CARDS.declined]: "card_declined",
  [TEST_CARDS.insufficientFunds]: "insufficient_funds",
  [TEST_CARDS.expired]: "expired_card",
};

/**
 * A processor simulator. It keeps its own book of operations (the
 * `processor_operations` table, standing in for the acquirer's records) so
 * tests can count exactly how many charges were made.
 */
export class SimulatedProcessor implements CardProcessor {
  /** One simulator book per tenant, as a real adapter would use one merchant account per tenant. */
  constructor(
    private readonly db: D1Database,
    private readonly tenantId: string,
  ) {}

  /** Book rows as one INSERT, each row written only where `guard` holds (see StagedCall). */
  private entries(
    rows: readonly (readonly [operation: string, reference: string, outcome: string])[],
    amount: number,
    currency: string,
    now: Date,
    guard = "1",
  ): D1PreparedStatement {
    const at = now.toISOString();
    const select = `SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE ${guard}`;
    return this.db
      .prepare(`INSERT INTO processor_operations (id, tenant_id, operation, reference, amount, currency, outcome, created_at) ${rows.map(() => select).join(" UNION ALL ")}`)
      .bind(...rows.flatMap(([operation, reference, outcome]) => [randomToken(12, "sim_"), this.tenantId, operation, reference, amount, currency, outcome, at]));
  }

  private decide(req: AuthorizeRequest, now: Date): DeclineCode | undefined {
    if (req.card.number === TEST_CARDS.processorError) throw new ProcessorError();
    return DECLINES[req.card.number] ?? (expired(req.card.expMonth, req.card.expYear, now) ? "expired_card" : undefined);
  }

  /**
   * A sale's authorization and capture are one operation at the processor: both in its book, or neither.
   * A declined call records the declined authorization only; a processor failure records nothing.
   */
  stage(operation: "authorize" | "sale", req: AuthorizeRequest, now: Date): StagedCall {
    const decline = this.decide(req, now);
    const processorRef = randomToken(12, "ch_sim_");
    const result: AuthorizeResult = decline ? { approved: false, declineCode: decline } : { approved: true, processorRef };
    const rows: [string, string, string][] = [["authorize", req.reference, decline ?? "approved"]];
    if (!decline && operation === "sale") rows.push(["capture", processorRef, "ok"]);
    return { result, record: (guard) => this.entries(rows, req.amount, req.currency, now, guard) };
  }

  private async call(operation: "authorize" | "sale", req: AuthorizeRequest, now: Date): Promise<AuthorizeResult> {
    const staged = this.stage(operation, req, now);
    await staged.record("1").run();
    return staged.result;
  }

  authorize(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult> {
    return this.call("authorize", req, now);
  }

  sale(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult> {
    return this.call("sale", req, now);
  }

  /**
   * A capture, void or refund as a statement of the transition's commit batch (see CardProcessor.stageTransition):
   * booked exactly when the transition commits. The book keeps the authorization's `processorRef` as its reference.
   */
  stageTransition(operation: TransitionOperation, call: TransitionCall, now: Date): D1PreparedStatement {
    return this.entries([[operation, call.processorRef, "ok"]], call.amount, call.currency, now);
  }

  /** Called at once (the compensating void of a creation whose commit failed), booked in a round trip of its own. */
  async capture(call: TransitionCall, now: Date): Promise<void> {
    await this.stageTransition("capture", call, now).run();
  }

  async void(call: TransitionCall, now: Date): Promise<void> {
    await this.stageTransition("void", call, now).run();
  }

  async refund(call: TransitionCall, now: Date): Promise<void> {
    await this.stageTransition("refund", call, now).run();
  }
}
