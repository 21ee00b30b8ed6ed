import type { RefundView } from "../schemas/refund";

export interface RefundRow {
  id: string;
  tenant_id: string;
  payment_id: string;
  amount: number;
  currency: string;
  reason: string;
  status: "pending_approval" | "succeeded";
  requested_by: string;
  requested_by_client: string;
  approved_by: string | null;
  created_at: string;
  approved_at: string | null;
}

export function refundView(r: RefundRow): RefundView {
  return {
    id: r.id,
    object: "refund",
    payment: r.payment_id,
    amount: r.amount,
    currency: r.currency,
    reason: r.reason,
    status: r.status,
    requested_by: r.requested_by,
    approved_by: r.approved_by,
    created_at: r.created_at,
    approved_at: r.approved_at,
  };
}

export function getRefund(db: D1Database, tenantId: string, id: string): Promise<RefundRow | null> {
  return db.prepare("SELECT * FROM refunds WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<RefundRow>();
}

export function insertRefund(db: D1Database, r: RefundRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO refunds (id, tenant_id, payment_id, amount, currency, reason, status, requested_by, requested_by_client, approved_by, created_at, approved_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(r.id, r.tenant_id, r.payment_id, r.amount, r.currency, r.reason, r.status, r.requested_by, r.requested_by_client, r.approved_by, r.created_at, r.approved_at);
}

/**
 * The approval's statements for the commit batch. The first fails the whole batch (json() of a malformed value
 * raises) unless the refund is still pending approval when the batch runs: two approvals of one refund that both
 * read it as pending, the second reading the payment after the first committed, would otherwise both pass the
 * payment's version guard and pay the refund twice out of another pending refund's reservation.
 */
export function approveRefundStatements(db: D1Database, tenantId: string, id: string, approver: string, at: string): D1PreparedStatement[] {
  return [
    db
      .prepare("SELECT json(CASE WHEN (SELECT status FROM refunds WHERE id = ? AND tenant_id = ?) = 'pending_approval' THEN '1' ELSE 'refund not pending' END)")
      .bind(id, tenantId),
    db
      .prepare("UPDATE refunds SET status = 'succeeded', approved_by = ?, approved_at = ? WHERE id = ? AND tenant_id = ? AND status = 'pending_approval'")
      .bind(approver, at, id, tenantId),
  ];
}

/** For the executor: is the refund no longer pending approval (another approval committed first)? */
export async function refundSettled(db: D1Database, tenantId: string, id: string): Promise<boolean> {
  const row = await db.prepare("SELECT status FROM refunds WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<{ status: string }>();
  return row !== null && row.status !== "pending_approval";
}
