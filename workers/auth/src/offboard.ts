import { z } from "zod";
import { ApiError } from "../../../shared/errors";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { noteTenantCutoff } from "./revocation/view";
import { TenantStore, type Tenant } from "./tenants";

const REASON_PATTERN = /^[^\s\p{Cc}\p{Cf}](?:[^\p{Cc}\p{Cf}]{0,498}[^\s\p{Cc}\p{Cf}])?$/u;

/** Why a tenant is offboarded: required, one line of printable text, kept with the tenant for the record. */
export const OffboardTenant = z
  .object({
    reason: z
      .string()
      .min(1)
      .max(500)
      // A refinement: the OpenAPI generator cannot express a `u`-flag pattern (see CreateTenant).
      .refine((v) => REASON_PATTERN.test(v), { message: "one line of text, no control or formatting characters" })
      .describe("Why the tenant is offboarded: one line of printable text, kept with the tenant"),
  })
  .strict();

/** What offboarding did to the tenant's data in the data services. */
export interface DataOffboarding {
  /** True once the tenant's wrapped data keys are destroyed in every data service (crypto-shredding). */
  keysDestroyed: boolean;
  /** The services that destroyed the tenant's keys. */
  services: string[];
}

/**
 * The hook where crypto-shredding plugs in: each data service (phi, payments, devices) destroys the
 * tenant's wrapped data keys over its binding, after the tenant's clients are disabled. The data
 * services have no per-tenant keys yet, so nothing is destroyed and the answer says so.
 */
export function destroyTenantDataKeys(_env: Env, _tenant: Tenant): Promise<DataOffboarding> {
  return Promise.resolve({ keysDestroyed: false, services: [] });
}

export interface Offboarded {
  tenant: Tenant;
  /** The ids of the clients this offboarding disabled (already disabled ones are not counted). */
  disabledClients: string[];
}

/**
 * Marks the tenant offboarded and disables every client of it, in one D1 batch (one transaction):
 * from then on its clients get no token (`clients.disabled`, and the client insert checks the tenant),
 * and their outstanding tokens are refused through the revocation view like any disabled client's (and
 * by the tenant's token cut-off, `tokens_not_before`).
 */
export async function offboardTenant(db: D1Database, input: { id: string; by: string; reason: string; now: Date }): Promise<Offboarded> {
  if (input.id === DEFAULT_TENANT_ID) {
    throw new ApiError(409, "default_tenant", "The default tenant holds every client made before tenants existed; it cannot be offboarded.");
  }
  const store = new TenantStore(db);
  const existing = await store.get(input.id);
  if (!existing) throw new ApiError(404, "tenant_not_found", "No tenant has this id.");
  const at = input.now.toISOString();
  // Also a tenant cut-off, as a shard move makes: the tenant's tokens are refused even apart from its clients.
  const cutoff = Math.floor(input.now.getTime() / 1000) + 1;
  const [marked, disabled] = await db.batch<{ id: string }>([
    db
      .prepare(
        `UPDATE tenants SET offboarded_at = ?1, offboarded_by = ?2, offboard_reason = ?3, tokens_not_before = MAX(COALESCE(tokens_not_before, 0), ?5)
         WHERE id = ?4 AND offboarded_at IS NULL RETURNING id`,
      )
      .bind(at, input.by, input.reason, input.id, cutoff),
    db.prepare("UPDATE clients SET disabled = 1, disabled_at = ?1 WHERE tenant_id = ?2 AND disabled = 0 RETURNING id").bind(at, input.id),
  ]);
  if (marked?.results.length !== 1) throw new ApiError(409, "tenant_offboarded", "This tenant is already offboarded.");
  noteTenantCutoff(input.id, cutoff);
  return {
    tenant: { ...existing, offboardedAt: at, offboardedBy: input.by, offboardReason: input.reason },
    disabledClients: (disabled?.results ?? []).map((r) => r.id),
  };
}
