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

export function approveRefundStatement(db: D1Database, tenantId: string, id: string, approver: string, at: string): D1PreparedStatement {
  return db
    .prepare("UPDATE refunds SET status = 'succeeded', approved_by = ?, approved_at = ? WHERE id = ? AND tenant_id = ? AND status = 'pending_approval'")
    .bind(approver, at, id, tenantId);
}
