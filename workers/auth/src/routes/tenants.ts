import { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { TENANT_ID_PATTERN } from "../../../../shared/tenants";
import { authConfig } from "../config";
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

export const CreateTenant = z
  .object({ name: z.string().min(1).max(100).regex(TENANT_NAME_PATTERN, { message: "letters, digits, spaces and . , & ' ( ) / _ + - only" }) })
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

export default app;
