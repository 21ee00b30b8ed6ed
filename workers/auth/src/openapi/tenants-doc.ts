import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { ProblemSchema } from "../../../../shared/openapi";
import { OffboardTenant } from "../offboard";
import { CreateTenant, TenantIdParam, TenantListQuery } from "../routes/tenants";
import { MoveTenant } from "../tenant-move";

const Tenant = z
  .object({
    id: z.string().openapi({ example: "ten_3k9XbQ2mZ1aP7wLd" }),
    name: z.string(),
    shard: z.number().int().openapi({ description: "The PHI database the tenant's data is on (placed when created, changed only by a move)" }),
    status: z.enum(["active", "offboarded"]),
    created_at: z.string(),
    created_by: z.string(),
    offboarded_at: z.string().nullable(),
    offboarded_by: z.string().nullable(),
    offboard_reason: z.string().nullable(),
    data_keys_destroyed_at: z.string().nullable().openapi({ description: "When every data service confirmed destroying the tenant's data keys (crypto-shredding)" }),
    moving_to: z.number().int().nullable().openapi({ description: "While a move is under way (POST /admin/tenants/{id}/move): the shard it goes to; its clients get no token meanwhile" }),
  })
  .openapi("Tenant");

const Offboarded = z
  .object({
    tenant: Tenant,
    clients_disabled: z.number().int().openapi({ description: "Clients of the tenant this call disabled" }),
    tokens_refused_within_ms: z.number().int().openapi({ description: "Their outstanding tokens are refused by every gateway isolate within this bound" }),
    data_keys_destroyed: z.boolean().openapi({ description: "True: every data service confirmed: phi and payments destroyed the tenant's data keys (crypto-shredding), devices erased its device sessions' readings; otherwise the answer is a 502" }),
    data_services: z.array(z.string()).openapi({ description: "The data services that confirmed (phi on every shard, payments, devices)" }),
  })
  .openapi("TenantOffboarded");

const Counts = z.record(z.string(), z.number().int());

const Moved = z
  .object({
    tenant: Tenant,
    from_shard: z.number().int().openapi({ description: "The shard the tenant's PHI was on" }),
    copied: Counts.openapi({ description: "Rows copied to the new shard, per table (phi_audit: audit records copied into its chain)" }),
    source_removed: Counts.openapi({ description: "Data rows removed from the old shard, per table (its audit records stay: append-only)" }),
    source_purged: z.boolean().openapi({ description: "False when removing the old shard's rows failed after the switch (they are unreachable; the next move onto that shard clears them)" }),
    frozen_ms: z.number().int().openapi({ description: "How long the tenant's clients got no token and its tokens were refused" }),
    tokens_refused_within_ms: z.number().int().openapi({ description: "Outstanding tokens are refused by every gateway isolate within this bound" }),
  })
  .openapi("TenantMoved");

const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: ProblemSchema } } });
const json = (description: string, schema: z.ZodType) => ({ description, content: { "application/json": { schema } } });
const platformOnly = { 401: problem("No token"), 403: problem("Needs admin on a platform client (a tenant's admin is refused)") };
const security = [{ oauth2: ["admin"] }];

/** The tenant admin routes (`src/routes/tenants.ts`), validated by the same zod schemas. */
export function registerTenantPaths(r: OpenAPIHono["openAPIRegistry"]): void {
  r.registerPath(
    createRoute({
      method: "post",
      path: "/admin/tenants",
      summary: "Create a tenant (an organization), placed on the PHI shard holding the fewest active tenants",
      security,
      request: { body: { content: { "application/json": { schema: CreateTenant } }, required: true } },
      responses: { 201: json("Created", Tenant), 400: problem("Invalid"), ...platformOnly, 409: problem("A tenant has this name"), 415: problem("Not JSON") },
    }),
  );
  r.registerPath(
    createRoute({
      method: "get",
      path: "/admin/tenants",
      summary: "List tenants, offboarded ones included (keyset paged by id)",
      security,
      request: { query: TenantListQuery },
      responses: { 200: json("A page", z.object({ data: z.array(Tenant), next_cursor: z.string().nullable() })), 400: problem("Invalid"), ...platformOnly },
    }),
  );
  r.registerPath(
    createRoute({
      method: "get",
      path: "/admin/tenants/{id}",
      summary: "Read a tenant",
      security,
      request: { params: TenantIdParam },
      responses: { 200: json("The tenant", Tenant), ...platformOnly, 404: problem("No such tenant") },
    }),
  );
  r.registerPath(
    createRoute({
      method: "delete",
      path: "/admin/tenants/{id}",
      summary: "Offboard a tenant: disable its clients, refuse their tokens, destroy its data keys in phi and payments (crypto-shredding) and erase its device sessions' readings, record who, when and why (it stays listed as offboarded)",
      security,
      request: { params: TenantIdParam, body: { content: { "application/json": { schema: OffboardTenant } }, required: true } },
      responses: {
        200: json("Offboarded", Offboarded),
        400: problem("Invalid reason"),
        ...platformOnly,
        404: problem("No such tenant"),
        409: problem("The default tenant, or already offboarded with its data destroyed by every data service"),
        502: problem("Offboarded (no access), but a data service did not confirm destroying the keys or erasing the readings: send the DELETE again"),
        415: problem("Not JSON"),
      },
    }),
  );
  r.registerPath(
    createRoute({
      method: "post",
      path: "/admin/tenants/{id}/move",
      summary:
        "Move a tenant's PHI to another shard: freeze it (no token issued, every outstanding token refused), copy every row and audit record, verify, switch, remove the old shard's rows",
      security,
      request: { params: TenantIdParam, body: { content: { "application/json": { schema: MoveTenant } }, required: true } },
      responses: {
        200: json("Moved", Moved),
        400: problem("Invalid body, or a shard this environment does not declare"),
        ...platformOnly,
        404: problem("No such tenant"),
        409: problem("Already on that shard, offboarded, a move under way, or the copy did not verify (rolled back: the tenant stays where it was)"),
        415: problem("Not JSON"),
        502: problem("phi failed during the move (rolled back: the tenant stays where it was)"),
      },
    }),
  );
}
