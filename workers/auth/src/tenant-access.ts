import type { Context } from "hono";
import { ApiError } from "../../../shared/errors";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { requireBearer, securityEvent } from "./bearer";
import type { AccessClaims } from "./tokens/verify";
import type { AuthEnv } from "./types";

/**
 * Who an admin caller is, from its verified token alone (no D1 read): a platform admin (scope
 * `admin`, no tenant) manages every tenant and client; a tenant admin (scope `admin` inside a
 * tenant) manages its own tenant's clients only.
 */
export type AdminCaller = { sub: string; clientId: string; tenantId: string | null; tokenId: string; roles: string[] };

export function adminCaller(claims: AccessClaims): AdminCaller {
  return { sub: claims.sub, clientId: claims.client_id, tenantId: claims.tenant_id ?? null, tokenId: claims.jti, roles: claims.roles };
}

/** The `admin` scope, on a client that belongs to no tenant; a tenant's admin gets 403. */
export async function requirePlatformAdmin(c: Context<AuthEnv>): Promise<AdminCaller> {
  const claims = await requireBearer(c, ["admin"]);
  if (claims.tenant_id !== undefined) {
    securityEvent(c, "scope_denied", { clientId: claims.client_id, reason: "needs platform admin" });
    throw new ApiError(403, "platform_admin_required", "Only a platform administrator (a client that belongs to no tenant) may do this.");
  }
  return adminCaller(claims);
}

/**
 * The tenant a new client goes to. A platform admin names any tenant, `null` for a platform
 * client, or nothing for the default tenant (what every client got before tenants). A tenant
 * admin creates clients in its own tenant only: naming another tenant, or none, is 403.
 */
export function newClientTenant(caller: AdminCaller, requested: string | null | undefined): string | null {
  if (requested === PLATFORM_TENANT_ID) {
    throw new ApiError(400, "invalid_request", "ten_platform is not a tenant: send \"tenant_id\": null for a platform client.");
  }
  if (caller.tenantId === null) return requested === undefined ? DEFAULT_TENANT_ID : requested;
  if (requested === undefined || requested === caller.tenantId) return caller.tenantId;
  throw new ApiError(403, "tenant_forbidden", "A tenant's administrator creates clients in its own tenant only.");
}
