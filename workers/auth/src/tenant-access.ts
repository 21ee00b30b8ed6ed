import type { Context } from "hono";
import { ApiError } from "../../../shared/errors";
import { requireBearer, securityEvent } from "./bearer";
import type { AccessClaims } from "./tokens/verify";
import type { AuthEnv } from "./types";

/**
 * Who an admin caller is, from its verified token alone (no D1 read): a platform admin (scope
 * `admin`, no tenant) manages every tenant and client; a tenant admin (scope `admin` inside a
 * tenant) manages its own tenant's clients only.
 */
export type AdminCaller = { sub: string; tenantId: string | null };

export function adminCaller(claims: AccessClaims): AdminCaller {
  return { sub: claims.sub, tenantId: claims.tenant_id ?? null };
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
