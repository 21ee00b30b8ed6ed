import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** OAuth clients (RFC 6749 section 2). The secret is kept only as a SHA-256 hash. */
export const clients = sqliteTable(
  "clients",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** SHA-256 hex of the 256-bit generated secret (high entropy: a slow hash adds nothing). */
    secretHash: text("secret_hash").notNull(),
    /** JSON array of role names. */
    roles: text("roles").notNull(),
    /** JSON array of scopes granted beyond the roles'. */
    scopes: text("scopes").notNull(),
    /** Device credentials are bound to one device (devices worker). */
    deviceId: text("device_id"),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    createdAt: text("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    disabledAt: text("disabled_at"),
    /**
     * RFC 7591 2: `client_secret_basic` / `client_secret_post` (a secret, either transport) or
     * `private_key_jwt` (RFC 7523 assertions signed by a key in `jwks`; such a client has no secret).
     */
    authMethod: text("token_endpoint_auth_method").notNull().default("client_secret_basic"),
    /** RFC 7591 2 `jwks` by value: a JSON JWK Set of public signing keys, each with a `kid`. */
    jwks: text("jwks"),
    /** RFC 7591 2 `jwks_uri`: where a `private_key_jwt` client publishes its keys (instead of `jwks`). */
    jwksUri: text("jwks_uri"),
    /** The tenant the client acts in; null for a platform client (no organization, e.g. an operator's admin). */
    tenantId: text("tenant_id"),
  },
  // disabled_at: the gateway's view loads the clients disabled recently (their tokens may still be live).
  // tenant_id: a tenant admin's list and offboarding's "every client of the tenant" read by it.
  (t) => [
    index("clients_device_id").on(t.deviceId),
    index("clients_disabled_at").on(t.disabledAt),
    index("clients_tenant_id").on(t.tenantId, t.id),
  ],
);

/**
 * Tenants: organizations whose data no other tenant can reach (README "Tenants"). `ten_platform`
 * (platform clients) is never a row. `shard` is the PHI database the tenant was placed on when
 * created. An offboarded tenant stays, with who offboarded it, when and why.
 */
export const tenants = sqliteTable(
  "tenants",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** The name folded for uniqueness (NFKC, lower case, single spaces): "ACME  Health" = "acme health". */
    nameKey: text("name_key").notNull(),
    shard: integer("shard").notNull(),
    createdAt: text("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    offboardedAt: text("offboarded_at"),
    offboardedBy: text("offboarded_by"),
    offboardReason: text("offboard_reason"),
    /** When every data service confirmed destroying the tenant's data keys (crypto-shredding); NULL until then. */
    dataKeysDestroyedAt: text("data_keys_destroyed_at"),
    /**
     * The data services that confirmed that erasure, comma-separated ("phi,payments,devices"). A tenant erased
     * before a service joined the list (devices, for tenants offboarded before it did) lacks it, and a further
     * DELETE runs the erasure again (every service's is idempotent) instead of answering 409.
     */
    dataErasedServices: text("data_erased_services"),
    /**
     * Unix seconds: every token of this tenant issued before it is revoked (`revokeTenantTokens`: a shard
     * move, an offboarding). The gateway's revocation view loads recent ones, as it does disabled clients.
     */
    tokensNotBefore: integer("tokens_not_before"),
    /** While a move (src/tenant-move.ts) copies the tenant's PHI: the shard it goes to. No token is issued meanwhile. */
    movingTo: integer("moving_to"),
    /** When that move started (UTC ISO); NULL when no move is under way. */
    movingSince: text("moving_since"),
  },
  // tokens_not_before: the gateway's view reads the recent cut-offs on every refresh.
  (t) => [uniqueIndex("tenants_name_key").on(t.nameKey), index("tenants_shard").on(t.shard), index("tenants_tokens_not_before").on(t.tokensNotBefore)],
);

/**
 * Revoked access tokens by `jti` (RFC 7009), kept until the token would have expired.
 * `seq` is the order D1 assigned (AUTOINCREMENT: never reused, even after rows are
 * deleted), so each gateway isolate fetches only the revocations after the last it saw.
 */
export const revokedTokens = sqliteTable(
  "revoked_tokens",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    jti: text("jti").notNull(),
    clientId: text("client_id").notNull(),
    expiresAt: integer("expires_at").notNull(),
    revokedAt: text("revoked_at").notNull(),
    revokedBy: text("revoked_by").notNull(),
  },
  (t) => [uniqueIndex("revoked_tokens_jti").on(t.jti), index("revoked_tokens_expires_at").on(t.expiresAt)],
);

/**
 * Client assertion `jti`s already used (RFC 7523 3, item 7), per client, kept while the
 * assertion could still be accepted: the primary key refuses a second use atomically.
 */
export const usedAssertions = sqliteTable(
  "used_assertions",
  {
    clientId: text("client_id").notNull(),
    jti: text("jti").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.jti] }), index("used_assertions_expires_at").on(t.expiresAt)],
);

/**
 * Failed client authentications per key (`client:<id>` of an existing client / `ip:<addr>`) in a
 * fixed window. Ended windows are pruned by the failure path (`recordFailure`), by `window_start`.
 */
export const authFailures = sqliteTable(
  "auth_failures",
  {
    key: text("key").primaryKey(),
    windowStart: integer("window_start").notNull(),
    failures: integer("failures").notNull(),
  },
  (t) => [index("auth_failures_window_start").on(t.windowStart)],
);

/** Security events: failed auth, bad tokens, scope denials, lockouts. Never a token or secret. */
export const securityEvents = sqliteTable(
  "security_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    time: text("time").notNull(),
    eventType: text("event_type").notNull(),
    severity: text("severity").notNull(),
    clientId: text("client_id"),
    ip: text("ip"),
    requestId: text("request_id"),
    route: text("route"),
    reason: text("reason"),
  },
  (t) => [index("security_events_time").on(t.time), index("security_events_type").on(t.eventType, t.time)],
);
