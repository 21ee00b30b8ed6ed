import { randomToken } from "../../../../shared/crypto";
import { ApiError } from "../../../../shared/errors";
import type { RequestInfo } from "../context";
import { decideApproval, needsApproval } from "../domain/maker-checker";
import type { Plan } from "../executor";
import type { CardProcessor } from "../processor/types";
import { ledgerStatement } from "../store/ledger";
import { getPayment, transitionStatements, versionMoved } from "../store/payments";
import { approveRefundStatements, getRefund, refundSettled, insertRefund, refundView, type RefundRow } from "../store/refunds";
import { apply, atProcessorTransition, loadForTransition, notFound, operations } from "./payments";

/**
 * A refund: while the payment's refunds, this one included, stay at or under the threshold it is paid at once;
 * past it, the amount is reserved and the refund waits for a second principal (maker-checker).
 */
export async function createRefund(
  info: RequestInfo,
  paymentId: string,
  input: { amount: number; reason: string },
  processor: CardProcessor,
): Promise<Plan> {
  const row = await loadForTransition(info, paymentId);
  // The payment's refunds so far count (from the row just read: no round trip), so splitting one does not evade approval.
  const held = needsApproval(input.amount, info.config.REFUND_APPROVAL_THRESHOLD, row.amount_refunded + row.amount_refund_pending);
  const next = apply(info, row, { type: "request_refund", amount: input.amount, needsApproval: held });
  const at = info.now.toISOString();
  const refund: RefundRow = {
    id: randomToken(16, "re_"),
    tenant_id: info.principal.tenantId,
    payment_id: paymentId,
    amount: input.amount,
    currency: row.currency,
    reason: input.reason,
    status: held ? "pending_approval" : "succeeded",
    requested_by: info.principal.sub,
    requested_by_client: info.principal.clientId,
    approved_by: null,
    created_at: at,
    approved_at: null,
  };
  const statements = [insertRefund(info.db, refund), ...transitionStatements(info, row, next, held ? "refund_requested" : "refund")];
  if (!held) {
    statements.push(...(await atProcessorTransition(processor, "refund", row, input.amount, info.now)));
    const entry = { paymentId, refundId: refund.id, currency: row.currency, reason: input.reason };
    statements.push(ledgerStatement(info, entry, { kind: "refund", refunded: input.amount }));
  }
  operations.add(1, { operation: "refund", outcome: held ? "pending_approval" : "ok" });
  return {
    status: 201,
    body: refundView(refund),
    subject: { action: held ? "refund.request" : "refund.create", resourceType: "refund", resourceId: refund.id, amount: input.amount, currency: row.currency },
    outcome: "allowed",
    code: held ? "pending_approval" : null,
    statements,
    lostRace: () => versionMoved(info.db, info.principal.tenantId, paymentId, row.version),
  };
}

export async function approveRefund(info: RequestInfo, refundId: string, processor: CardProcessor): Promise<Plan> {
  const refund = await getRefund(info.db, info.principal.tenantId, refundId);
  if (!refund) throw notFound("refund");
  const decision = decideApproval({ status: refund.status, requestedBy: refund.requested_by }, info.principal);
  if (!decision.ok) {
    const detail = decision.code === "self_approval_forbidden" ? "The requester of a refund cannot approve it." : "This refund cannot be approved.";
    throw new ApiError(decision.status, decision.code, detail);
  }
  const row = await getPayment(info.db, info.principal.tenantId, refund.payment_id);
  if (!row) throw notFound("payment");
  const next = apply(info, row, { type: "approve_refund", amount: refund.amount });
  const booked = await atProcessorTransition(processor, "refund", row, refund.amount, info.now);
  const at = info.now.toISOString();
  const approved: RefundRow = { ...refund, status: "succeeded", approved_by: info.principal.sub, approved_at: at };
  operations.add(1, { operation: "refund_approve", outcome: "ok" });
  return {
    status: 200,
    body: refundView(approved),
    subject: { action: "refund.approve", resourceType: "refund", resourceId: refundId, amount: refund.amount, currency: refund.currency },
    outcome: "allowed",
    code: null,
    statements: [
      ...approveRefundStatements(info.db, info.principal.tenantId, refundId, info.principal.sub, at),
      ...transitionStatements(info, row, next, "refund_approved"),
      ledgerStatement(info, { paymentId: row.id, refundId, currency: row.currency, reason: refund.reason }, { kind: "refund", refunded: refund.amount }),
      ...booked,
    ],
    lostRace: async () =>
      (await versionMoved(info.db, info.principal.tenantId, row.id, row.version)) || (await refundSettled(info.db, info.principal.tenantId, refundId)),
  };
}
