import type { Context } from "hono";
import type { PhiEnv } from "../env";

/**
 * Where one request's queries run and whose rows they may touch: the database
 * and the caller's tenant. Every statement of the store binds `tenant`, so a
 * tenant's request can neither read nor write another tenant's rows: an id of
 * another tenant behaves exactly like an id that does not exist (404).
 */
export interface Scope {
  db: D1Database;
  tenant: string;
}

export function scopeOf(c: Context<PhiEnv>): Scope {
  return { db: c.env.DB, tenant: c.var.principal.tenantId };
}
