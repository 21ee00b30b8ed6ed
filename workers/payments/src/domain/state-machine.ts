/**
 * The payment state machine: one pure function over a transition table.
 * Callers persist what it returns; nothing else decides a payment's state.
 */
export const PAYMENT_STATUSES = [
  "requires_capture",
  "succeeded",
  "declined",
  "canceled",
  "partially_refunded",
  "refunded",
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const EVENT_TYPES = ["capture", "void", "request_refund", "approve_refund"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Card networks hold an uncaptured authorization for about 7 days; after that it cannot be captured. */
export const AUTHORIZATION_TTL_MS = 7 * 24 * 3600 * 1000;

/** Which events each state accepts. Terminal states accept none. */
export const TRANSITIONS: Readonly<Record<PaymentStatus, readonly EventType[]>> = {
  requires_capture: ["capture", "void"],
  succeeded: ["request_refund", "approve_refund"],
  partially_refunded: ["request_refund", "approve_refund"],
  declined: [],
  canceled: [],
  refunded: [],
};

export interface PaymentState {
  status: PaymentStatus;
  /** Authorized amount (minor units). */
  amount: number;
  amountCaptured: number;
  amountRefunded: number;
  /** Reserved by refunds waiting for approval, so approvals can never over-refund. */
  amountRefundPending: number;
  /** ISO time of the authorization. */
  authorizedAt: string;
}

export type PaymentEvent =
  | { type: "capture"; amount?: number | undefined }
  | { type: "void" }
  | { type: "request_refund"; amount: number; needsApproval: boolean }
  | { type: "approve_refund"; amount: number };

export type TransitionError =
  | { ok: false; status: 409; code: "invalid_state_transition" | "authorization_expired" }
  | { ok: false; status: 422; code: "amount_exceeds_authorized" | "refund_exceeds_captured" | "invalid_amount" };

export type TransitionResult = { ok: true; next: PaymentState } | TransitionError;

const refused = (): TransitionError => ({ ok: false, status: 409, code: "invalid_state_transition" });

function refundedStatus(captured: number, refunded: number): PaymentStatus {
  if (refunded === 0) return "succeeded";
  return refunded >= captured ? "refunded" : "partially_refunded";
}

export function transition(state: PaymentState, event: PaymentEvent, now: Date): TransitionResult {
  if (!TRANSITIONS[state.status].includes(event.type)) return refused();
  switch (event.type) {
    case "capture": {
      const amount = event.amount ?? state.amount;
      if (!Number.isSafeInteger(amount) || amount <= 0) return { ok: false, status: 422, code: "invalid_amount" };
      if (amount > state.amount) return { ok: false, status: 422, code: "amount_exceeds_authorized" };
      if (now.getTime() - Date.parse(state.authorizedAt) > AUTHORIZATION_TTL_MS) {
        return { ok: false, status: 409, code: "authorization_expired" };
      }
      // A partial capture releases the rest of the authorization (it cannot be captured later).
      return { ok: true, next: { ...state, status: "succeeded", amountCaptured: amount } };
    }
    case "void":
      return { ok: true, next: { ...state, status: "canceled" } };
    case "request_refund": {
      if (!Number.isSafeInteger(event.amount) || event.amount <= 0) return { ok: false, status: 422, code: "invalid_amount" };
      const available = state.amountCaptured - state.amountRefunded - state.amountRefundPending;
      if (event.amount > available) return { ok: false, status: 422, code: "refund_exceeds_captured" };
      if (event.needsApproval) {
        return { ok: true, next: { ...state, amountRefundPending: state.amountRefundPending + event.amount } };
      }
      const refunded = state.amountRefunded + event.amount;
      return { ok: true, next: { ...state, amountRefunded: refunded, status: refundedStatus(state.amountCaptured, refunded) } };
    }
    case "approve_refund": {
      // Only reserved money can be released: the reservation was checked when the refund was requested.
      if (!Number.isSafeInteger(event.amount) || event.amount <= 0 || event.amount > state.amountRefundPending) {
        return { ok: false, status: 422, code: "refund_exceeds_captured" };
      }
      const refunded = state.amountRefunded + event.amount;
      return {
        ok: true,
        next: {
          ...state,
          amountRefunded: refunded,
          amountRefundPending: state.amountRefundPending - event.amount,
          status: refundedStatus(state.amountCaptured, refunded),
        },
      };
    }
  }
}
