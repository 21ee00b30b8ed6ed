import { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { issueForClient } from "../../../../shared/issues";
import { isScopeToken, ROLES } from "../../../../shared/scopes";
import { TENANT_ID_PATTERN } from "../../../../shared/tenants";
import { requireBearer } from "../bearer";
import { Jwks, privateMemberIssue, publicMembers, unusableKeys } from "../client-keys";
import { AUTH_METHODS, ClientStore, clientView } from "../clients";
import { allowLoopbackJwksUri, authConfig, viewOptions } from "../config";
import { checkJwksUri, JWKS_URI_MAX_LENGTH } from "../jwks-uri";
import { noteClientsDisabled } from "../revocation/view";
import { adminCaller, newClientTenant } from "../tenant-access";
import { loadKeySet } from "../tokens/keys";

const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();

export const CreateClient = z
  .object({
    name: z.string().trim().min(1).max(100),
    roles: z.array(z.enum(ROLES)).max(ROLES.length).default([]),
    scopes: z
      .array(z.string().max(40).refine(isScopeToken, { message: "not a valid scope" }))
      .max(30)
      .default([]),
    /** RFC 7591 2; default `client_secret_basic` (either secret transport works). */
    token_endpoint_auth_method: z.enum(AUTH_METHODS).optional(),
    /** RFC 7591 2: public keys by value, or (`jwks_uri`) where they are published; one of them with `private_key_jwt`. */
    jwks: Jwks.optional(),
    jwks_uri: z.string().max(JWKS_URI_MAX_LENGTH).optional(),
    /**
     * The tenant the client acts in. A platform admin: any existing tenant, `null` for a platform
     * client, omitted for the default tenant. A tenant admin: its own tenant (the default when omitted).
     */
    tenant_id: z.string().regex(TENANT_ID_PATTERN).nullable().optional(),
  })
  .strict()
  .refine((v) => v.roles.length + v.scopes.length > 0, { message: "a client needs at least one role or scope" })
  .refine((v) => !(v.jwks && v.jwks_uri), { message: "send jwks or jwks_uri, not both (RFC 7591 2)", path: ["jwks_uri"] })
  .refine((v) => (v.token_endpoint_auth_method === "private_key_jwt") === (v.jwks !== undefined || v.jwks_uri !== undefined), {
    message: "private_key_jwt needs jwks (public keys by value) or jwks_uri, and they are only for private_key_jwt",
    path: ["jwks"],
  });

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(100).optional(),
});

export const EventsQuery = ListQuery.extend({
  event_type: z.string().regex(/^[a-z_]{1,40}$/).optional(),
  since: z.iso.datetime().optional(),
  cursor: z.coerce.number().int().min(1).optional(),
});

export function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new ApiError(400, "invalid_request", "The request is not valid.", {
      extra: { errors: r.error.issues.slice(0, 20).map((i) => {
        const { path, code, message } = issueForClient(i, undefined);
        return { path, code, message };
      }) },
    });
  }
  return r.data;
}

export async function jsonBody(c: { req: { header(n: string): string | undefined; json(): Promise<unknown> } }): Promise<unknown> {
  if (!(c.req.header("content-type") ?? "").toLowerCase().startsWith("application/json")) {
    throw new ApiError(415, "unsupported_media_type", "Send application/json.");
  }
  try {
    return await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_json", "The body is not valid JSON.");
  }
}

app.post("/admin/clients", async (c) => {
  const caller = adminCaller(await requireBearer(c, ["admin"]));
  const body = await jsonBody(c);
  const privateMember = privateMemberIssue(body);
  if (privateMember) throw new ApiError(400, "invalid_request", "The request is not valid.", { extra: { errors: [privateMember] } });
  const input = parse(CreateClient, body);
  const cfg = authConfig(c.env);
  // The token endpoint fetches this URL later: only https to a public host (jwks-uri.ts).
  const uri = input.jwks_uri === undefined ? undefined : checkJwksUri(input.jwks_uri, allowLoopbackJwksUri(cfg));
  if (uri && !uri.ok) throw new ApiError(400, "invalid_request", "The request is not valid.", { extra: { errors: [{ path: "jwks_uri", message: uri.message }] } });
  const keys = input.jwks?.keys.map(publicMembers);
  const unusable = keys ? await unusableKeys(keys) : [];
  if (unusable.length > 0) {
    throw new ApiError(400, "invalid_request", "The request is not valid.", {
      extra: { errors: [{ path: "jwks.keys", message: "a key is not a valid public key for its type and curve" }] },
    });
  }
  const tenantId = newClientTenant(caller, input.tenant_id);
  const { client, secret } = await new ClientStore(c.env.DB, cfg).create({
    tenantId,
    name: input.name,
    roles: input.roles,
    scopes: input.scopes,
    createdBy: caller.sub,
    ...(input.token_endpoint_auth_method ? { authMethod: input.token_endpoint_auth_method } : {}),
    ...(keys ? { jwks: keys } : {}),
    ...(uri?.ok ? { jwksUri: uri.url } : {}),
  });
  // The secret is shown this once; only its hash is stored. A private_key_jwt client has none.
  return c.json({ ...clientView(client), ...(secret !== undefined ? { client_secret: secret } : {}) }, 201, {
    location: `/admin/clients/${client.id}`,
  });
});

app.get("/admin/clients", async (c) => {
  const caller = adminCaller(await requireBearer(c, ["admin"]));
  const q = parse(ListQuery, c.req.query());
  const rows = await new ClientStore(c.env.DB, authConfig(c.env)).list(q.limit + 1, q.cursor, caller.tenantId);
  const page = rows.slice(0, q.limit);
  return c.json({ data: page.map(clientView), next_cursor: rows.length > q.limit ? page.at(-1)?.id : null });
});

app.get("/admin/clients/:id", async (c) => {
  const caller = adminCaller(await requireBearer(c, ["admin"]));
  const client = await new ClientStore(c.env.DB, authConfig(c.env)).get(c.req.param("id"), caller.tenantId);
  if (!client) throw new ApiError(404, "client_not_found", "No client has this id.");
  return c.json(clientView(client));
});

/**
 * Disables the client: its credentials stop working at once, its tokens are refused
 * at once in this isolate and within the revocation bound in every other.
 */
app.delete("/admin/clients/:id", async (c) => {
  const caller = adminCaller(await requireBearer(c, ["admin"]));
  const client = await new ClientStore(c.env.DB, authConfig(c.env)).disable(c.req.param("id"), caller.tenantId);
  noteClientsDisabled([client.id], viewOptions(c.env), Date.now());
  return c.json(clientView(client));
});

/** Key ids and which one signs (rotation is done by configuration; see README). */
app.get("/admin/keys", async (c) => {
  await requireBearer(c, ["admin"]);
  const ks = await loadKeySet(authConfig(c.env));
  return c.json({ alg: ks.alg, signing_kid: ks.signingKid, verification_kids: [...ks.verify.keys()] });
});

app.get("/admin/security-events", async (c) => {
  const caller = adminCaller(await requireBearer(c, ["audit:read"]));
  const q = parse(EventsQuery, c.req.query());
  const where: string[] = [];
  const binds: (string | number)[] = [];
  // A tenant's auditor sees the events of its own tenant's clients only; a platform caller sees all.
  if (caller.tenantId !== null) {
    where.push("client_id IN (SELECT id FROM clients WHERE tenant_id = ?)");
    binds.push(caller.tenantId);
  }
  if (q.cursor) {
    where.push("id < ?");
    binds.push(q.cursor);
  }
  if (q.event_type) {
    where.push("event_type = ?");
    binds.push(q.event_type);
  }
  if (q.since) {
    where.push("time >= ?");
    binds.push(q.since);
  }
  const { results } = await c.env.DB.prepare(
    `SELECT id, time, event_type, severity, client_id, ip, request_id, route, reason FROM security_events
     ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY id DESC LIMIT ?`,
  )
    .bind(...binds, q.limit + 1)
    .all<{ id: number }>();
  const page = results.slice(0, q.limit);
  return c.json({ data: page, next_cursor: results.length > q.limit ? page.at(-1)?.id : null });
});

export default app;
