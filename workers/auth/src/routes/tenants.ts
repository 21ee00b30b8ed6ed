import { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { TENANT_ID_PATTERN } from "../../../../shared/tenants";
import { clientIp, securityEvent } from "../bearer";
import { authConfig, viewOptions } from "../config";
import { destroyTenantDataKeys, offboardTenant, OffboardTenant } from "../offboard";
import { noteClientsDisabled } from "../revocation/view";
import { requirePlatformAdmin } from "../tenant-access";
import { TenantStore, tenantView } from "../tenants";
import { jsonBody, parse } from "./admin";

const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();

/**
 * An organization's display name: letters and digits of any script, spaces and a few punctuation
 * marks, starting with a letter or digit and ending with one (or `.` / `)`); never control or
 * formatting characters (bidirectional overrides) that would disguise one name as another.
 */
export const TENANT_NAME_PATTERN = /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M} .,&'()/_+-]{0,98}[\p{L}\p{N}\p{M}.)])?$/u;

// A refinement, not `.regex()`: the OpenAPI generator writes a `u`-flag pattern with its flags appended, which no
// client could use; the rule is in the description instead.
export const CreateTenant = z
  .object({
    name: z
      .string()
      .min(1)
      .max(100)
      .refine((v) => TENANT_NAME_PATTERN.test(v), { message: "letters, digits, spaces and . , & ' ( ) / _ + - only" })
      .describe("Letters and digits of any script, spaces and . , & ' ( ) / _ + -; starts with a letter or digit; unique, compared case-insensitively"),
  })
  .strict();

export const TenantListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().regex(TENANT_ID_PATTERN).optional(),
});

export const TenantIdParam = z.object({ id: z.string().regex(TENANT_ID_PATTERN) });

function notFound(): ApiError {
  return new ApiError(404, "tenant_not_found", "No tenant has this id.");
}

app.post("/admin/tenants", async (c) => {
  const caller = await requirePlatformAdmin(c);
  const input = parse(CreateTenant, await jsonBody(c));
  const tenant = await new TenantStore(c.env.DB).create({ name: input.name, createdBy: caller.sub, shards: authConfig(c.env).PHI_SHARDS });
  if (!tenant) throw new ApiError(409, "tenant_name_taken", "A tenant with this name exists (names are compared case-insensitively).");
  return c.json(tenantView(tenant), 201, { location: `/admin/tenants/${tenant.id}` });
});

app.get("/admin/tenants", async (c) => {
  await requirePlatformAdmin(c);
  const q = parse(TenantListQuery, c.req.query());
  const rows = await new TenantStore(c.env.DB).list(q.limit + 1, q.cursor);
  const page = rows.slice(0, q.limit);
  return c.json({ data: page.map(tenantView), next_cursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null });
});

app.get("/admin/tenants/:id", async (c) => {
  await requirePlatformAdmin(c);
  const tenant = await new TenantStore(c.env.DB).get(c.req.param("id"));
  if (!tenant) throw notFound();
  return c.json(tenantView(tenant));
});

/**
 * Offboards a tenant (README "Offboarding"): marks it, disables its clients (their tokens are
 * refused at once here and within the revocation bound everywhere), records a security event,
 * then hands over to the data services' key destruction.
 */
app.delete("/admin/tenants/:id", async (c) => {
  const caller = await requirePlatformAdmin(c);
  const input = parse(OffboardTenant, await jsonBody(c));
  const id = c.req.param("id");
  if (!TENANT_ID_PATTERN.test(id)) throw notFound();
  const now = new Date();
  const done = await offboardTenant(c.env.DB, { id, by: caller.sub, reason: input.reason, now });
  const cfg = authConfig(c.env);
  if (!done.retry) {
    noteClientsDisabled(done.disabledClients, viewOptions(c.env), Date.now());
    securityEvent(c, "tenant_offboarded", { clientId: caller.clientId, reason: `tenant ${done.tenant.id}: ${done.disabledClients.length} clients disabled` });
  }
  const data = await destroyTenantDataKeys(c.env, done.tenant, caller, { id: c.get("requestId"), ip: clientIp(c), now });
  if (!data.keysDestroyed) {
    throw new ApiError(
      502,
      "data_keys_not_destroyed",
      `The tenant is offboarded (no client of it gets a token or reaches its data), but ${data.failed.join(" and ")} did not confirm destroying its data; send this DELETE again.`,
    );
  }
  securityEvent(c, "tenant_data_keys_destroyed", { clientId: caller.clientId, reason: `tenant ${done.tenant.id}: ${data.services.join(", ")}` });
  return c.json({
    tenant: tenantView({ ...done.tenant, dataKeysDestroyedAt: done.tenant.dataKeysDestroyedAt ?? now.toISOString() }),
    clients_disabled: done.disabledClients.length,
    tokens_refused_within_ms: cfg.REVOCATION_REFRESH_MS,
    data_keys_destroyed: data.keysDestroyed,
    data_services: data.services,
  });
});

export default app;
