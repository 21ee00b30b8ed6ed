import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ProblemSchema } from "../../../../shared/openapi";
import { CreateClient, EventsQuery, ListQuery } from "../routes/admin";
import { SECURITY_EVENT_ROWS_PER_WINDOW, SECURITY_EVENT_WINDOW_MS } from "../security-events";
import { registerTenantPaths } from "./tenants-doc";

/**
 * The gateway's own routes in the OpenAPI document. The admin routes reuse the
 * zod schemas that validate them; the OAuth endpoints parse form bodies by hand
 * (RFC 6749 rules on repeated and unknown parameters), so their request shapes
 * are declared here and kept beside the parser's tests.
 */
const Json = z.record(z.string(), z.unknown());
const OAuthError = z
  .object({ error: z.string(), error_description: z.string(), status: z.number().int() })
  .passthrough()
  .openapi("OAuthError");
const TokenRequest = z
  .object({
    grant_type: z.literal("client_credentials"),
    scope: z.string().optional().openapi({ description: "Space-separated scopes; default: every scope the client is allowed" }),
    client_id: z.string().optional().openapi({ description: "With client_secret, when not using HTTP Basic" }),
    client_secret: z.string().optional(),
    client_assertion_type: z
      .literal("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
      .optional()
      .openapi({ description: "RFC 7523 2.2: with client_assertion, for private_key_jwt clients" }),
    client_assertion: z
      .string()
      .optional()
      .openapi({ description: "A JWT signed with a registered key: iss = sub = client_id, aud = the token endpoint, exp at most 5 minutes ahead, a jti used once" }),
  })
  .openapi("TokenRequest");
const TokenResponse = z
  .object({ access_token: z.string(), token_type: z.literal("Bearer"), expires_in: z.number().int(), scope: z.string() })
  .openapi("TokenResponse");
const TokenParam = z.object({ token: z.string(), token_type_hint: z.string().optional() }).openapi("TokenParameter");
const Introspection = z
  .object({
    active: z.boolean(),
    scope: z.string().optional(),
    client_id: z.string().optional(),
    sub: z.string().optional(),
    exp: z.number().int().optional(),
    iat: z.number().int().optional(),
    jti: z.string().optional(),
    roles: z.array(z.string()).optional(),
    tenant_id: z.string().optional().openapi({ description: "The token's tenant; absent for a platform client's token" }),
  })
  .openapi("Introspection");
const ClientView = z
  .object({
    client_id: z.string(),
    name: z.string(),
    roles: z.array(z.string()),
    scopes: z.array(z.string()),
    allowed_scopes: z.array(z.string()),
    device_id: z.string().nullable(),
    tenant_id: z.string().nullable().openapi({ description: "The tenant the client acts in; null for a platform client" }),
    disabled: z.boolean(),
    created_at: z.string(),
    created_by: z.string(),
    disabled_at: z.string().nullable(),
    token_endpoint_auth_method: z.enum(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
    jwks: z.object({ keys: z.array(Json) }).optional().openapi({ description: "The registered public keys (private_key_jwt clients)" }),
    jwks_uri: z.string().optional().openapi({ description: "Where a private_key_jwt client publishes its keys (instead of jwks)" }),
  })
  .openapi("Client");
const CreatedClient = ClientView.extend({
  client_secret: z.string().optional().openapi({ description: "Shown once; stored only as a hash. None for private_key_jwt clients" }),
}).openapi("CreatedClient");

const form = (schema: z.ZodType) => ({
  content: {
    "application/x-www-form-urlencoded": { schema },
    "application/json": { schema },
  },
  required: true,
});
const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: ProblemSchema } } });
const oauthErr = (description: string) => ({ description, content: { "application/json": { schema: OAuthError } } });
const json = (description: string, schema: z.ZodType) => ({ description, content: { "application/json": { schema } } });
const bearer = (...scopes: string[]) => [{ oauth2: scopes }];

export function authDocument(): Record<string, unknown> {
  const doc = new OpenAPIHono();
  const r = doc.openAPIRegistry;
  for (const path of ["/oauth/token", "/token"]) {
    r.registerPath(
      createRoute({
        method: "post",
        path,
        summary: path === "/token" ? "Token (alias of /oauth/token)" : "Issue an access token (client credentials)",
        security: [],
        request: { body: form(TokenRequest) },
        responses: {
          200: json("RFC 9068 JWT access token", TokenResponse),
          400: oauthErr("invalid_request, invalid_scope or unsupported_grant_type"),
          401: oauthErr("invalid_client"),
          415: oauthErr("Not form-encoded or JSON"),
          429: oauthErr("Too many failed authentications; see Retry-After"),
          503: problem("storage_unavailable: the client store could not be read; retry after Retry-After"),
        },
      }),
    );
  }
  r.registerPath(
    createRoute({
      method: "post",
      path: "/oauth/introspect",
      summary: "Introspect a token (RFC 7662); the caller authenticates as a client",
      security: [],
      request: { body: form(TokenParam) },
      responses: { 200: json("Token state", Introspection), 400: oauthErr("token missing"), 401: oauthErr("invalid_client"), 429: oauthErr("locked") },
    }),
  );
  r.registerPath(
    createRoute({
      method: "get",
      path: "/introspect",
      summary: "Introspect the bearer token of this request",
      security: bearer(),
      responses: { 200: json("Token state", Introspection), 401: problem("No token") },
    }),
  );
  r.registerPath(
    createRoute({
      method: "post",
      path: "/oauth/revoke",
      summary: "Revoke a token (RFC 7009)",
      security: [],
      request: { body: form(TokenParam) },
      responses: { 200: { description: "Revoked, or nothing to do" }, 400: oauthErr("token missing"), 401: oauthErr("invalid_client") },
    }),
  );
  r.registerPath(createRoute({ method: "get", path: "/.well-known/jwks.json", summary: "Public signing keys", security: [], responses: { 200: json("JWK set", Json) } }));
  r.registerPath(
    createRoute({ method: "get", path: "/.well-known/oauth-authorization-server", summary: "RFC 8414 metadata", security: [], responses: { 200: json("Metadata", Json) } }),
  );
  r.registerPath(
    createRoute({
      method: "post",
      path: "/admin/clients",
      summary:
        "Create a client (its secret is shown once; private_key_jwt clients register public keys instead, by value in jwks or by jwks_uri). A platform admin names any tenant (`tenant_id`; omitted: the default tenant; null: a platform client); a tenant's admin creates clients in its own tenant only",
      security: bearer("admin"),
      request: { body: { content: { "application/json": { schema: CreateClient } }, required: true } },
      responses: {
        201: json("Created", CreatedClient),
        400: problem("Invalid, or tenant_not_found"),
        401: problem("No token"),
        403: problem("Needs admin; a tenant's admin naming another tenant or none (tenant_forbidden)"),
        409: problem("The tenant is offboarded"),
        415: problem("Not JSON"),
      },
    }),
  );
  r.registerPath(
    createRoute({
      method: "get",
      path: "/admin/clients",
      summary: "List clients (cursor paged; a tenant's admin sees its own tenant's only)",
      security: bearer("admin"),
      request: { query: ListQuery },
      responses: { 200: json("A page", z.object({ data: z.array(ClientView), next_cursor: z.string().nullable() })), 400: problem("Invalid"), 401: problem("No token"), 403: problem("Needs admin") },
    }),
  );
  for (const method of ["get", "delete"] as const) {
    r.registerPath(
      createRoute({
        method,
        path: "/admin/clients/{id}",
        summary:
          method === "get"
            ? "Read a client (a tenant's admin: its own tenant's clients only, others are 404)"
            : "Disable a client (its tokens stop working at once; a tenant's admin: its own tenant's clients only)",
        security: bearer("admin"),
        request: { params: z.object({ id: z.string() }) },
        responses: { 200: json("The client", ClientView), 401: problem("No token"), 403: problem("Needs admin"), 404: problem("No such client"), ...(method === "delete" ? { 409: problem("The bootstrap client") } : {}) },
      }),
    );
  }
  registerTenantPaths(r);
  r.registerPath(createRoute({ method: "get", path: "/admin/keys", summary: "Signing and verification key ids", security: bearer("admin"), responses: { 200: json("Keys", Json), 401: problem("No token"), 403: problem("Needs admin") } }));
  r.registerPath(
    createRoute({
      method: "get",
      path: "/admin/security-events",
      summary: "Security events (newest first, cursor paged)",
      description:
        `The stored rows. Events a caller can cause at will (failed client authentication, lockouts, missing or bad tokens, scope denials, spoofed principal headers) are stored up to ${SECURITY_EVENT_ROWS_PER_WINDOW} per event type per ${SECURITY_EVENT_WINDOW_MS / 1000} s per gateway isolate: ` +
        "the first row stored after a window that left some out says in its reason how many and since when. Tenant offboarding, data key destruction and shard moves are always stored. The logs and auth_security_events_total count every event.",
      security: bearer("audit:read"),
      request: { query: EventsQuery },
      responses: { 200: json("A page", Json), 400: problem("Invalid"), 401: problem("No token"), 403: problem("Needs audit:read") },
    }),
  );
  for (const [path, summary] of [["/health", "Liveness"], ["/readiness", "D1 and every service binding (503 when one is down)"], ["/", "Name, version, environment"]] as const) {
    r.registerPath(createRoute({ method: "get", path, summary, security: [], responses: { 200: json("OK", Json), ...(path === "/readiness" ? { 503: json("A dependency is down", Json) } : {}) } }));
  }
  return doc.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "auth", version: "0" } }) as unknown as Record<string, unknown>;
}
