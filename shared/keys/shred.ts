import type { HonoRequest } from "hono";
import { z } from "zod";
import { ApiError } from "../errors";
import type { Principal } from "../principal";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../tenants";

/**
 * The data services' internal offboarding route, `POST /internal/tenants/{id}/shred` (README
 * "Offboarding"). The gateway's route table never forwards `/internal`, so only auth reaches it, over
 * the service binding, with a principal it signs for the platform admin who offboards the tenant.
 */
export const SHRED_PATH = "/internal/tenants/:id/shred";

const ShredBody = z.object({ reason: z.string().min(1).max(500) }).strict();

export interface ShredOrder {
  tenant: string;
  reason: string;
  by: string;
  at: string;
}

/** The tenant to shred and why, validated: never the default tenant (it cannot be offboarded) nor the platform. */
export async function shredOrder(req: HonoRequest, principal: Principal, now: Date): Promise<ShredOrder> {
  const tenant = req.param("id") ?? "";
  if (!TENANT_ID_PATTERN.test(tenant) || tenant === DEFAULT_TENANT_ID || tenant === PLATFORM_TENANT_ID) {
    throw new ApiError(400, "invalid_tenant", "Name a tenant that can be offboarded.");
  }
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw new ApiError(400, "invalid_json", "The body is not valid JSON.");
  }
  const parsed = ShredBody.safeParse(body);
  if (!parsed.success) throw new ApiError(400, "invalid_request", "Send {\"reason\": \"...\"}.");
  return { tenant, reason: parsed.data.reason, by: principal.sub, at: now.toISOString() };
}

/**
 * Overwrites, in place, every ciphertext of `column` in `table` that the tenant's rows still hold under
 * a platform key (sealed before data keys existed: `v1.<platform kid>...`, never `v1.tk_...`), so that
 * nothing of the tenant decrypts once its data key is gone. Same length, so SQLite rewrites the cell.
 */
export function overwriteLegacy(db: Pick<D1Database, "prepare">, table: string, column: string, tenant: string): D1PreparedStatement {
  return db
    .prepare(
      `UPDATE ${table} SET ${column} = printf('%.*c', length(${column}), '0')
       WHERE tenant_id = ? AND ${column} LIKE 'v1.%' AND ${column} NOT LIKE 'v1.tk\\_%' ESCAPE '\\'`,
    )
    .bind(tenant);
}
