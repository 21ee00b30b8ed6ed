import { z } from "zod";
import { ApiError } from "../../../shared/errors";
import { logger } from "../../../shared/logger";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import { callInternal, type DataService } from "./internal-call";
import { noteTenantCutoff } from "./revocation/view";
import type { AdminCaller } from "./tenant-access";
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
  /**
   * True once every data service confirmed: phi and payments destroyed the tenant's wrapped data keys
   * (crypto-shredding), devices erased what its device sessions stored.
   */
  keysDestroyed: boolean;
  /** The services that confirmed. */
  services: string[];
  /** The services that did not (unreachable or an error): the DELETE must be sent again. */
  failed: string[];
}

/**
 * The data services that hold tenant data: phi and payments seal it under per-tenant keys; devices keeps
 * readings in one Durable Object per device (no PHI or card data in its D1), which it erases.
 */
const DATA_SERVICES: readonly DataService[] = ["phi", "payments", "devices"];

/**
 * Whether the tenant's completed erasure covered every service that holds tenant data now. A tenant erased before
 * a service joined DATA_SERVICES (devices) did not: a further DELETE runs the erasure again rather than a 409.
 */
function erasureComplete(t: Tenant): boolean {
  return t.dataKeysDestroyedAt !== null && DATA_SERVICES.every((s) => t.dataErasedServices?.includes(s));
}

/** Calls of one service's shred route per offboarding: a service that answers `complete: false` (devices, a page of devices at a time) is called again. */
const SHRED_CALLS_MAX = 20;

/**
 * Crypto-shredding: each data service destroys the tenant's data over its service binding
 * (`POST /internal/tenants/{id}/shred`, a path the gateway never forwards), with a principal auth signs
 * for the platform admin who offboards, and records that in its own audit trail. phi destroys the data
 * key on every shard, payments its key, devices erases the tenant's device sessions (in pages: it answers
 * `complete: false` until the last). Each service answers only after its work committed; all are
 * idempotent, so a retry after a failure is safe. When all confirmed, the tenant records when.
 */
export async function destroyTenantDataKeys(
  env: Env,
  tenant: Tenant,
  caller: AdminCaller,
  request: { id: string; ip: string; now: Date },
): Promise<DataOffboarding> {
  const body = { reason: tenant.offboardReason ?? "offboarded" };
  const shred = async (service: DataService): Promise<boolean> => {
    for (let call = 0; call < SHRED_CALLS_MAX; call++) {
      const res = await callInternal(env, caller, { service, path: `/internal/tenants/${tenant.id}/shred`, body, requestId: request.id, ip: request.ip });
      if (!res.ok) {
        await res.body?.cancel();
        logger.error("tenant_shred_failed", { request_id: request.id, service, status: res.status });
        return false;
      }
      const answer = await res.json<{ complete?: boolean }>();
      if (answer.complete !== false) return true;
    }
    logger.error("tenant_shred_failed", { request_id: request.id, service, reason: "incomplete" });
    return false;
  };
  const outcomes = await Promise.all(
    DATA_SERVICES.map(async (service) => {
      try {
        return { name: service, ok: await shred(service) };
      } catch (err) {
        logger.error("tenant_shred_failed", { request_id: request.id, service, error_class: err instanceof Error ? err.name : typeof err });
        return { name: service, ok: false };
      }
    }),
  );
  const services = outcomes.filter((o) => o.ok).map((o) => o.name);
  const failed = outcomes.filter((o) => !o.ok).map((o) => o.name);
  if (failed.length === 0) {
    // The first completion's time stays; the services are those of the latest (a re-run covers a later one too).
    await env.DB.prepare("UPDATE tenants SET data_keys_destroyed_at = COALESCE(data_keys_destroyed_at, ?1), data_erased_services = ?3 WHERE id = ?2")
      .bind(request.now.toISOString(), tenant.id, services.join(","))
      .run();
  }
  return { keysDestroyed: failed.length === 0, services, failed };
}

export interface Offboarded {
  tenant: Tenant;
  /** The ids of the clients this offboarding disabled (already disabled ones are not counted). */
  disabledClients: string[];
  /** True when the tenant was already offboarded and only the key destruction is retried. */
  retry: boolean;
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
  if (marked?.results.length !== 1) {
    // Offboarded before, but a data service did not confirm the key destruction, or the erasure predates a service
    // that now holds tenant data: this call runs it (again).
    if (existing.offboardedAt && !erasureComplete(existing)) return { tenant: existing, disabledClients: [], retry: true };
    throw new ApiError(409, "tenant_offboarded", "This tenant is already offboarded and its data keys are destroyed.");
  }
  noteTenantCutoff(input.id, cutoff);
  return {
    tenant: { ...existing, offboardedAt: at, offboardedBy: input.by, offboardReason: input.reason },
    disabledClients: (disabled?.results ?? []).map((r) => r.id),
    retry: false,
  };
}
