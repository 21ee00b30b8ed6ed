import { AuditSealer, sealDelayMs, type SealerSettings } from "../../../shared/audit/sealer";
import { PAYMENTS_CHAIN } from "./audit";

/** The one sealer of the payments audit chain (one object, named after the table): see shared/audit/sealer.ts. */
export class PaymentsAuditSealer extends AuditSealer<Env> {
  protected settings(): SealerSettings {
    return { db: this.env.DB, chain: PAYMENTS_CHAIN, delayMs: sealDelayMs(this.env.AUDIT_SEAL_DELAY_MS), service: "payments", database: "DB" };
  }
}
