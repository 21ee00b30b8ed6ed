import { randomToken } from "../../../../shared/crypto";
import { expired } from "../domain/card";
import { ProcessorError, type AuthorizeRequest, type AuthorizeResult, type CardProcessor, type DeclineCode } from "./types";

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

  private entry(operation: string, reference: string, amount: number, currency: string, outcome: string, now: Date): D1PreparedStatement {
    return this.db
      .prepare(
        "INSERT INTO processor_operations (id, tenant_id, operation, reference, amount, currency, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .bind(randomToken(12, "sim_"), this.tenantId, operation, reference, amount, currency, outcome, now.toISOString());
  }

  private async record(operation: string, reference: string, amount: number, currency: string, outcome: string, now: Date) {
    await this.entry(operation, reference, amount, currency, outcome, now).run();
  }

  private decide(req: AuthorizeRequest, now: Date): DeclineCode | undefined {
    if (req.card.number === TEST_CARDS.processorError) throw new ProcessorError();
    return DECLINES[req.card.number] ?? (expired(req.card.expMonth, req.card.expYear, now) ? "expired_card" : undefined);
  }

  async authorize(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult> {
    const decline = this.decide(req, now);
    await this.record("authorize", req.reference, req.amount, req.currency, decline ?? "approved", now);
    if (decline) return { approved: false, declineCode: decline };
    return { approved: true, processorRef: randomToken(12, "ch_sim_") };
  }

  /** The authorization and its capture are one operation at the processor: both in its book, or neither. */
  async sale(req: AuthorizeRequest, now: Date): Promise<AuthorizeResult> {
    const decline = this.decide(req, now);
    if (decline) {
      await this.record("authorize", req.reference, req.amount, req.currency, decline, now);
      return { approved: false, declineCode: decline };
    }
    const processorRef = randomToken(12, "ch_sim_");
    await this.db.batch([
      this.entry("authorize", req.reference, req.amount, req.currency, "approved", now),
      this.entry("capture", processorRef, req.amount, req.currency, "ok", now),
    ]);
    return { approved: true, processorRef };
  }

  async capture(processorRef: string, amount: number, currency: string, now: Date): Promise<void> {
    await this.record("capture", processorRef, amount, currency, "ok", now);
  }

  async void(processorRef: string, amount: number, currency: string, now: Date): Promise<void> {
    await this.record("void", processorRef, amount, currency, "ok", now);
  }

  async refund(processorRef: string, amount: number, currency: string, now: Date): Promise<void> {
    await this.record("refund", processorRef, amount, currency, "ok", now);
  }
}
