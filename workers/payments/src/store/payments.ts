import type { RequestInfo } from "../context";
import type { PaymentState, PaymentStatus } from "../domain/state-machine";
import type { PaymentView } from "../schemas/payment";

export interface PaymentRow {
  id: string;
  /** The tenant it belongs to: every read below filters by it, so another tenant's id reads as missing. */
  tenant_id: string;
  status: PaymentStatus;
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  amount_refund_pending: number;
  currency: string;
  capture_method: "automatic" | "manual";
  payment_method_id: string;
  decline_code: string | null;
  processor_ref: string | null;
  description: string | null;
  metadata: string;
  version: number;
  created_at: string;
  updated_at: string;
  created_by: string;
  created_by_client: string;
}

export function paymentView(row: PaymentRow): PaymentView {
  return {
    id: row.id,
    object: "payment",
    status: row.status,
    amount: row.amount,
    amount_captured: row.amount_captured,
    amount_refunded: row.amount_refunded,
    amount_refund_pending: row.amount_refund_pending,
    currency: row.currency,
    capture_method: row.capture_method,
    payment_method: row.payment_method_id,
    decline_code: row.decline_code,
    description: row.description,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export function stateOf(row: PaymentRow): PaymentState {
  return {
    status: row.status,
    amount: row.amount,
    amountCaptured: row.amount_captured,
    amountRefunded: row.amount_refunded,
    amountRefundPending: row.amount_refund_pending,
    authorizedAt: row.created_at,
  };
}

export function withState(row: PaymentRow, next: PaymentState, now: Date): PaymentRow {
  return {
    ...row,
    status: next.status,
    amount_captured: next.amountCaptured,
    amount_refunded: next.amountRefunded,
    amount_refund_pending: next.amountRefundPending,
    version: row.version + 1,
    updated_at: now.toISOString(),
  };
}

export function getPayment(db: D1Database, tenantId: string, id: string): Promise<PaymentRow | null> {
  return db.prepare("SELECT * FROM payments WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<PaymentRow>();
}

export function insertPayment(db: D1Database, r: PaymentRow): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO payments (id, tenant_id, status, amount, amount_captured, amount_refunded, amount_refund_pending, currency, capture_method,
        payment_method_id, decline_code, processor_ref, description, metadata, version, created_at, updated_at, created_by, created_by_client)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      r.id, r.tenant_id, r.status, r.amount, r.amount_captured, r.amount_refunded, r.amount_refund_pending, r.currency, r.capture_method,
      r.payment_method_id, r.decline_code, r.processor_ref, r.description, r.metadata, r.version, r.created_at, r.updated_at,
      r.created_by, r.created_by_client,
    );
}

/**
 * The statements of one transition: the row update, and the (payment, version)
 * row that makes a concurrent transition from the same version fail the whole batch.
 */
export function transitionStatements(info: RequestInfo, before: PaymentRow | null, after: PaymentRow, event: string): D1PreparedStatement[] {
  const guard = info.db
    .prepare("INSERT INTO payment_transitions (payment_id, tenant_id, version, from_status, to_status, event, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    .bind(after.id, after.tenant_id, after.version, before?.status ?? null, after.status, event, info.principal.sub, info.now.toISOString());
  if (!before) return [insertPayment(info.db, after), guard];
  const update = info.db
    .prepare(
      `UPDATE payments SET status = ?, amount_captured = ?, amount_refunded = ?, amount_refund_pending = ?, version = ?, updated_at = ?
       WHERE id = ? AND tenant_id = ? AND version = ?`,
    )
    .bind(after.status, after.amount_captured, after.amount_refunded, after.amount_refund_pending, after.version, after.updated_at, after.id, after.tenant_id, before.version);
  return [update, guard];
}

/** For the executor: did another transition move this payment past `version`? */
export async function versionMoved(db: D1Database, tenantId: string, id: string, version: number): Promise<boolean> {
  const row = await db.prepare("SELECT version FROM payments WHERE id = ? AND tenant_id = ?").bind(id, tenantId).first<{ version: number }>();
  return row !== null && row.version !== version;
}
