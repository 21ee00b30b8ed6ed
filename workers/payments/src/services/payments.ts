import { randomToken } from "../../../../shared/crypto";
import { ApiError, problemBody } from "../../../../shared/errors";
import { counter } from "../../../../shared/metrics";
import type { RequestInfo } from "../context";
import { checkCard } from "../domain/card";
import { transition, type PaymentEvent, type TransitionError } from "../domain/state-machine";
import type { Plan, Staged } from "../executor";
import { ProcessorError, type AuthorizeResult, type CardProcessor, type TransitionCall, type TransitionOperation } from "../processor/types";
import type { CreatePaymentInput } from "../schemas/payment";
import { ledgerStatement } from "../store/ledger";
import { getPayment, paymentView, stateOf, transitionStatements, versionMoved, withState, type PaymentRow } from "../store/payments";
import { getPaymentMethod, revealNumber, tokenize } from "../store/vault";

export const operations = counter("payments_operations_total", "Payment operations by kind and outcome");

/** Any processor failure is a 502 with nothing committed on our side. */
export async function atProcessor<T>(operation: string, call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ProcessorError)) throw err;
    operations.add(1, { operation, outcome: "processor_error" });
    throw new ApiError(502, "processor_error", "The card processor failed. Nothing was charged; retry with the same Idempotency-Key.");
  }
}

/** The processor's idempotency reference of an operation moving `row` from its version (TransitionCall.reference). */
export const transitionReference = (row: Pick<PaymentRow, "id" | "version">): string => `${row.id}:v${row.version}`;

/**
 * A capture, void or refund at the processor, for a plan. A processor whose book is in our database (the
 * simulator) hands back its record as a statement for the plan's commit batch: it takes effect exactly when the
 * transition commits, never for a lost race or a failed batch. A remote processor is called now, with the
 * payment's version as its idempotency reference, so the racers of one version and a retry act there once.
 */
export async function atProcessorTransition(
  processor: CardProcessor,
  operation: TransitionOperation,
  row: PaymentRow,
  amount: number,
  now: Date,
): Promise<D1PreparedStatement[]> {
  const call: TransitionCall = { reference: transitionReference(row), processorRef: row.processor_ref ?? "", amount, currency: row.currency };
  if (processor.stageTransition) return [processor.stageTransition(operation, call, now)];
  await atProcessor(operation, () => processor[operation](call, now));
  return [];
}

export const notFound = (what: string) => new ApiError(404, "resource_missing", `No ${what} has this id.`);

/** Card for the processor: from the vault, or validated and tokenized on the fly (CVC kept only in memory). */
async function resolveCard(info: RequestInfo, input: CreatePaymentInput) {
  if (input.payment_method) {
    const pm = await getPaymentMethod(info.db, info.principal.tenantId, input.payment_method);
    if (!pm) throw notFound("payment method");
    const number = await revealNumber(info, pm);
    return { pmId: pm.id, statements: [], card: { number, expMonth: pm.exp_month, expYear: pm.exp_year } };
  }
  const card = input.card;
  if (!card) throw new ApiError(400, "invalid_request", "Either payment_method or card is required.");
  const checked = checkCard({ number: card.number, expMonth: card.exp_month, expYear: card.exp_year, cvc: card.cvc }, info.now);
  if (!checked.ok) throw new ApiError(422, checked.code, "The card was refused.");
  const sealed = await tokenize(info, { ...checked, expMonth: card.exp_month, expYear: card.exp_year });
  return {
    pmId: sealed.view.id,
    statements: [sealed.statement],
    card: { number: checked.number, expMonth: card.exp_month, expYear: card.exp_year, cvc: card.cvc },
  };
}

/**
 * A payment creation, staged for the executor (runStaged): checks, the card (sealed for the vault when inline)
 * and the processor request come before the Idempotency-Key claim. A processor whose book is in our database
 * (the simulator) is decided here (`decided`): the executor then commits the claim, its record, the payment, its
 * ledger lines and the audit record as one batch, which a live key fails whole. Any other processor is called in
 * `plan`, once the key is claimed. Either way nothing is charged for a duplicate.
 */
export async function stagePayment(info: RequestInfo, input: CreatePaymentInput, processor: CardProcessor): Promise<Staged> {
  const currency = input.currency.toUpperCase();
  if (!info.config.PAYMENT_CURRENCIES.includes(currency)) {
    throw new ApiError(422, "currency_not_supported", `Supported currencies: ${info.config.PAYMENT_CURRENCIES.join(", ")}.`);
  }
  if (input.amount > info.config.PAYMENT_MAX_AMOUNT) {
    throw new ApiError(422, "amount_too_large", `The maximum amount is ${info.config.PAYMENT_MAX_AMOUNT} minor units.`);
  }
  const { pmId, statements, card } = await resolveCard(info, input);
  const id = randomToken(16, "pi_");
  const automatic = input.capture === "automatic";
  const request = { reference: id, amount: input.amount, currency, card };
  // Automatic capture is one processor call (authorize and capture together), manual capture authorizes only.
  const operation = automatic ? "sale" : "authorize";
  const staged = await atProcessor("authorize", () => processor.stage?.(operation, request, info.now));
  return {
    withClaim: staged?.record,
    decided: staged !== undefined,
    plan: async () => {
      const auth = staged ? staged.result : await atProcessor("authorize", () => (automatic ? processor.sale(request, info.now) : processor.authorize(request, info.now)));
      return paymentPlan(info, input, { id, pmId, currency, statements }, auth, processor);
    },
  };
}

function paymentPlan(
  info: RequestInfo,
  input: CreatePaymentInput,
  p: { id: string; pmId: string; currency: string; statements: D1PreparedStatement[] },
  auth: AuthorizeResult,
  processor: CardProcessor,
): Plan {
  const { id, currency } = p;
  const subject = { action: "payment.create", resourceType: "payment" as const, resourceId: id, amount: input.amount, currency };
  const automatic = input.capture === "automatic";
  const at = info.now.toISOString();
  const approved = auth.approved;
  const row: PaymentRow = {
    id,
    tenant_id: info.principal.tenantId,
    status: !approved ? "declined" : automatic ? "succeeded" : "requires_capture",
    amount: input.amount,
    amount_captured: approved && automatic ? input.amount : 0,
    amount_refunded: 0,
    amount_refund_pending: 0,
    currency,
    capture_method: input.capture,
    payment_method_id: p.pmId,
    decline_code: auth.approved ? null : auth.declineCode,
    processor_ref: auth.approved ? auth.processorRef : null,
    description: input.description ?? null,
    metadata: JSON.stringify(input.metadata ?? {}),
    version: 1,
    created_at: at,
    updated_at: at,
    created_by: info.principal.sub,
    created_by_client: info.principal.clientId,
  };
  const all = [...p.statements, ...transitionStatements(info, null, row, "authorize")];
  if (auth.approved) {
    const ref = auth.processorRef;
    const entry = { paymentId: id, currency, reason: input.description ?? null };
    const authorization = { kind: "authorization", authorized: row.amount } as const;
    // Both entries of an automatic capture are one multi-row INSERT.
    all.push(automatic ? ledgerStatement(info, entry, authorization, { kind: "capture", authorized: row.amount, captured: row.amount }) : ledgerStatement(info, entry, authorization));
    operations.add(1, { operation: "authorize", outcome: "approved" });
    return {
      status: 201,
      body: paymentView(row),
      subject,
      outcome: "allowed",
      code: null,
      statements: all,
      // Its own reference: no version of this payment ever committed, so no transition shares it.
      compensate: () => processor.void({ reference: `${id}:compensate`, processorRef: ref, amount: row.amount, currency }, info.now),
    };
  }
  operations.add(1, { operation: "authorize", outcome: auth.declineCode });
  // A decline is an answer about the card (402, as Stripe), and the declined payment is kept.
  const err = new ApiError(402, auth.declineCode, "The card was declined.", { extra: { payment: paymentView(row) } });
  return { status: 402, body: problemBody(err, info.requestId), subject, outcome: "declined", code: auth.declineCode, statements: all };
}

const TRANSITION_DETAIL: Record<TransitionError["code"], string> = {
  invalid_state_transition: "A payment in state {state} cannot do this.",
  authorization_expired: "The authorization is older than 7 days and can no longer be captured.",
  amount_exceeds_authorized: "The amount is more than was authorized.",
  refund_exceeds_captured: "The refunds would exceed what was captured.",
  invalid_amount: "The amount must be a positive integer in minor units.",
};

export async function loadForTransition(info: RequestInfo, id: string): Promise<PaymentRow> {
  const row = await getPayment(info.db, info.principal.tenantId, id);
  if (!row) throw notFound("payment");
  return row;
}

export function apply(info: RequestInfo, row: PaymentRow, event: PaymentEvent): PaymentRow {
  const r = transition(stateOf(row), event, info.now);
  if (!r.ok) throw new ApiError(r.status, r.code, TRANSITION_DETAIL[r.code].replace("{state}", row.status));
  return withState(row, r.next, info.now);
}

export async function capturePayment(info: RequestInfo, id: string, amount: number | undefined, processor: CardProcessor): Promise<Plan> {
  const row = await loadForTransition(info, id);
  const next = apply(info, row, { type: "capture", amount });
  const booked = await atProcessorTransition(processor, "capture", row, next.amount_captured, info.now);
  operations.add(1, { operation: "capture", outcome: "ok" });
  return {
    status: 200,
    body: paymentView(next),
    subject: { action: "payment.capture", resourceType: "payment", resourceId: id, amount: next.amount_captured, currency: row.currency },
    outcome: "allowed",
    code: null,
    statements: [
      ...transitionStatements(info, row, next, "capture"),
      ledgerStatement(info, { paymentId: id, currency: row.currency }, { kind: "capture", authorized: row.amount, captured: next.amount_captured }),
      ...booked,
    ],
    lostRace: () => versionMoved(info.db, info.principal.tenantId, id, row.version),
  };
}

export async function voidPayment(info: RequestInfo, id: string, reason: string | undefined, processor: CardProcessor): Promise<Plan> {
  const row = await loadForTransition(info, id);
  const next = apply(info, row, { type: "void" });
  const booked = await atProcessorTransition(processor, "void", row, row.amount, info.now);
  operations.add(1, { operation: "void", outcome: "ok" });
  return {
    status: 200,
    body: paymentView(next),
    subject: { action: "payment.void", resourceType: "payment", resourceId: id, amount: row.amount, currency: row.currency },
    outcome: "allowed",
    code: null,
    statements: [
      ...transitionStatements(info, row, next, "void"),
      ledgerStatement(info, { paymentId: id, currency: row.currency, reason: reason ?? null }, { kind: "void", authorized: row.amount }),
      ...booked,
    ],
    lostRace: () => versionMoved(info.db, info.principal.tenantId, id, row.version),
  };
}
