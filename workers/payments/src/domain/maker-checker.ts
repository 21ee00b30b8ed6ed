import { scopeCovers } from "../../../../shared/scopes";

/**
 * Segregation of duties for refunds (SOX 404; PCI-DSS 6.5.4 / 7.2 least
 * privilege): a refund above the threshold is held until a different
 * principal holding `payment:approve` releases it.
 */
export function needsApproval(amount: number, threshold: number): boolean {
  return amount > threshold;
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
