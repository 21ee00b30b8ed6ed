import { AuditSealer, sealDelayMs, type SealerSettings } from "../../../../shared/audit/sealer";
import { PHI_CHAIN } from "./trail";

/** The one sealer of phi's audit chain (one object, named after the table): see shared/audit/sealer.ts. */
export class PhiAuditSealer extends AuditSealer<Env> {
  protected settings(): SealerSettings {
    return { db: this.env.DB, chain: PHI_CHAIN, delayMs: sealDelayMs(this.env.AUDIT_SEAL_DELAY_MS) };
  }
}
