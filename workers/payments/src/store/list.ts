import { fromBase64Url, toBase64Url } from "../../../../shared/crypto";
import { ApiError } from "../../../../shared/errors";
import type { PaymentRow } from "./payments";

export interface ListFilter {
  status?: string | undefined;
  createdGte?: string | undefined;
  createdLt?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** Opaque keyset cursor: the (created_at, id) of the last row of the previous page. */
export function encodeCursor(row: { created_at: string; id: string }): string {
  return toBase64Url(new TextEncoder().encode(JSON.stringify([row.created_at, row.id])));
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(fromBase64Url(cursor)));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string") return [v[0], v[1]];
  } catch {
    // fall through to the one error below
  }
  throw new ApiError(400, "invalid_cursor", "The cursor is not valid.");
}

/** The tenant's payments, newest first, keyset-paged (stable under concurrent inserts). */
export async function listPayments(db: D1Database, tenantId: string, f: ListFilter): Promise<{ rows: PaymentRow[]; next: string | null }> {
  const where: string[] = ["tenant_id = ?"];
  const args: (string | number)[] = [tenantId];
  if (f.status) {
    where.push("status = ?");
    args.push(f.status);
  }
  if (f.createdGte) {
    where.push("created_at >= ?");
    args.push(new Date(f.createdGte).toISOString());
  }
  if (f.createdLt) {
    where.push("created_at < ?");
    args.push(new Date(f.createdLt).toISOString());
  }
  if (f.cursor) {
    const [at, id] = decodeCursor(f.cursor);
    where.push("(created_at < ? OR (created_at = ? AND id < ?))");
    args.push(at, at, id);
  }
  const sql = `SELECT * FROM payments WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT ?`;
  const { results } = await db
    .prepare(sql)
    .bind(...args, f.limit + 1)
    .all<PaymentRow>();
  const rows = results.slice(0, f.limit);
  const last = rows.at(-1);
  return { rows, next: results.length > f.limit && last ? encodeCursor(last) : null };
}
