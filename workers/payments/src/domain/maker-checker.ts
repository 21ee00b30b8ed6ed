import { scopeCovers } from "../../../../shared/scopes";

/**
 * Segregation of duties for refunds (SOX 404; PCI-DSS 6.5.4 / 7.2 least
 * privilege): a refund is held until a different principal holding
 * `payment:approve` releases it when the payment's refunds, counted together,
 * would pass the threshold: `earlier` is what the payment has refunded and
 * holds pending approval already, so a large refund split into small ones is
 * held from the one that passes it on.
 */
export function needsApproval(amount: number, threshold: number, earlier = 0): boolean {
  return earlier + amount > threshold;
}

export type ApprovalDecision =
  | { ok: true }
  | { ok: false; status: 403; code: "insufficient_scope" | "self_approval_forbidden" }
  | { ok: false; status: 409; code: "refund_not_pending" };

export function decideApproval(
  refund: { status: string; requestedBy: string },
  approver: { sub: string; scopes: readonly string[] },
): ApprovalDecision {
  if (!scopeCovers(approver.scopes, "payment:approve")) return { ok: false, status: 403, code: "insufficient_scope" };
  // The maker may never be the checker, whatever scopes they hold.
  if (approver.sub === refund.requestedBy) return { ok: false, status: 403, code: "self_approval_forbidden" };
  if (refund.status !== "pending_approval") return { ok: false, status: 409, code: "refund_not_pending" };
  return { ok: true };
}
