import { randomToken } from "../../../../shared/crypto";
import type { RequestInfo } from "../context";
import { entryLines, sumLines, type LedgerEvent } from "../domain/ledger";

export interface EntryContext {
  paymentId: string;
  refundId?: string | null;
  currency: string;
  reason?: string | null;
}

/**
 * Ledger entries (one, or several of one payment: an automatic capture's authorization and capture) as a
 * single multi-row INSERT, for the same batch as the state change they book (with actor, reason, request id
 * and trace id). Each entry has its own id and balances on its own.
 */
export function ledgerStatement(info: RequestInfo, ctx: EntryContext, ...events: [LedgerEvent, ...LedgerEvent[]]): D1PreparedStatement {
  const at = info.now.toISOString();
  const values: (string | number | null)[] = [];
  let rows = 0;
  for (const event of events) {
    const lines = entryLines(event);
    // Defense in depth: an unbalanced entry is a bug, never something to commit.
    if (sumLines(lines) !== 0) throw new Error("unbalanced ledger entry");
    const entryId = randomToken(12, "le_");
    for (const l of lines) {
      values.push(entryId, info.principal.tenantId, ctx.paymentId, ctx.refundId ?? null, event.kind, l.account, ctx.currency, l.amount);
      values.push(info.principal.sub, ctx.reason ?? null, info.requestId, info.traceId, at);
      rows++;
    }
  }
  const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  return info.db
    .prepare(
      `INSERT INTO ledger_lines (entry_id, tenant_id, payment_id, refund_id, kind, account, currency, amount, actor, reason, request_id, trace_id, created_at)
       VALUES ${Array.from({ length: rows }, () => row).join(", ")}`,
    )
    .bind(...values);
}

export interface BalanceRow {
  currency: string;
  account: string;
  balance: number;
}

/** The tenant's own books: its balances, never the platform's sum. */
export async function balances(db: D1Database, tenantId: string): Promise<BalanceRow[]> {
  const { results } = await db
    .prepare("SELECT currency, account, SUM(amount) AS balance FROM ledger_lines WHERE tenant_id = ? GROUP BY currency, account ORDER BY currency, account")
    .bind(tenantId)
    .all<BalanceRow>();
  return results;
}

export interface DailyRow {
  day: string;
  currency: string;
  kind: string;
  entries: number;
  debits: number;
  credits: number;
}

/** Per UTC day, currency and kind of movement: debits, credits (which must cancel) and entry count. */
export async function dailySummary(db: D1Database, tenantId: string, from: string, to: string): Promise<DailyRow[]> {
  const { results } = await db
    .prepare(
      `SELECT substr(created_at, 1, 10) AS day, currency, kind, COUNT(DISTINCT entry_id) AS entries,
              SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS debits,
              SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS credits
       FROM ledger_lines WHERE tenant_id = ? AND created_at >= ? AND created_at < ?
       GROUP BY day, currency, kind ORDER BY day, currency, kind`,
    )
    .bind(tenantId, from, to)
    .all<DailyRow>();
  return results;
}
