import { AuditSealer, sealDelayMs, type SealerSettings } from "../../../../shared/audit/sealer";
import { DEVICE_CHAIN } from "../audit";

/** The one sealer of the devices audit chain (one object, named after the table): see shared/audit/sealer.ts. */
export class DeviceAuditSealer extends AuditSealer<Env> {
  protected settings(): SealerSettings {
    return { db: this.env.DB, chain: DEVICE_CHAIN, delayMs: sealDelayMs(this.env.AUDIT_SEAL_DELAY_MS), service: "devices", database: "DB" };
  }
}
