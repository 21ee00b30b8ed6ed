/**
 * Double-entry bookkeeping for money movements (SOX 404 internal control over
 * financial reporting): every entry is a set of lines that sum to zero,
 * debits positive and credits negative, in minor units of one currency.
 *
 * Accounts:
 * - `authorized_funds` / `authorization_obligations`: memo pair for money held
 *   on the card but not yet moved (an authorization opens it; capture or void closes it).
 * - `processor_receivable`: what the processor owes us for captured payments.
 * - `revenue`: captured sales (credit balance).
 * - `refunds`: contra-revenue for money given back (debit balance).
 */
export const ACCOUNTS = ["authorized_funds", "authorization_obligations", "processor_receivable", "revenue", "refunds"] as const;
export type Account = (typeof ACCOUNTS)[number];

export type LedgerKind = "authorization" | "capture" | "void" | "refund";

export interface LedgerLine {
  account: Account;
  amount: number;
}

export type LedgerEvent =
  | { kind: "authorization"; authorized: number }
  | { kind: "capture"; authorized: number; captured: number }
  | { kind: "void"; authorized: number }
  | { kind: "refund"; refunded: number };

/** The lines of one entry; they always sum to zero. */
export function entryLines(event: LedgerEvent): LedgerLine[] {
  switch (event.kind) {
    case "authorization":
      return [
        { account: "authorized_funds", amount: event.authorized },
        { account: "authorization_obligations", amount: -event.authorized },
      ];
    case "void":
      return [
        { account: "authorized_funds", amount: -event.authorized },
        { account: "authorization_obligations", amount: event.authorized },
      ];
    case "capture":
      // Close the whole hold (a partial capture releases the rest), then book the sale.
      return [
        { account: "authorized_funds", amount: -event.authorized },
        { account: "authorization_obligations", amount: event.authorized },
        { account: "processor_receivable", amount: event.captured },
        { account: "revenue", amount: -event.captured },
      ];
    case "refund":
      return [
        { account: "refunds", amount: event.refunded },
        { account: "processor_receivable", amount: -event.refunded },
      ];
  }
}

export function sumLines(lines: readonly LedgerLine[]): number {
  return lines.reduce((s, l) => s + l.amount, 0);
}
