import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, type SQLiteColumn } from "drizzle-orm/sqlite-core";

/**
 * Drizzle columns every audit table starts with. `seq` is assigned by the
 * database in commit order (AUTOINCREMENT: never reused, even after the last row
 * is gone). The seal columns are NULL while a record is pending and set once by
 * the chain's sealer; SQL triggers (the custom migration `*_audit_protect.sql`
 * of each database) forbid any other change and every DELETE.
 */
export function auditChainColumns() {
  return {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    prevHash: text("prev_hash"),
    hash: text("hash"),
    /** When the sealer linked this record (UTC ISO); NULL while pending. */
    sealedAt: text("sealed_at"),
  };
}

/** The sealer scans pending records in seq order: a partial index keeps that scan as small as the backlog. */
export function pendingIndex(table: string, seq: SQLiteColumn) {
  return index(`${table}_pending`).on(seq).where(sql`hash IS NULL`);
}

/**
 * A chain's checkpoints: after each sealing run, how far the chain is sealed
 * (`sealed_up_to`, `head_hash`), how many records it then held sealed, how many
 * this run sealed, and when. Insert-only (triggers), written by the sealer only.
 */
export function checkpointsTable(name: string) {
  return sqliteTable(name, {
    id: integer("id").primaryKey({ autoIncrement: true }),
    sealedUpTo: integer("sealed_up_to").notNull(),
    headHash: text("head_hash").notNull(),
    sealedCount: integer("sealed_count").notNull(),
    batch: integer("batch").notNull(),
    at: text("at").notNull(),
  });
}
