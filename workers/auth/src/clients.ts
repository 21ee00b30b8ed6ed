import { and, asc, eq, getTableColumns, gt, type SQL } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import { digestsEqual, randomToken, sha256Hex, timingSafeEqualStr } from "../../../shared/crypto";
import { ApiError } from "../../../shared/errors";
import { allowedScopes } from "../../../shared/scopes";
import type { AuthConfig } from "./config";
import type { JWK } from "jose";
import { storedKeys } from "./client-keys";
import { clients, tenants } from "./db/schema";

export interface Client {
  id: string;
  name: string;
  roles: string[];
  scopes: string[];
  deviceId: string | null;
  disabled: boolean;
  createdAt: string;
  createdBy: string;
  disabledAt: string | null;
  /** RFC 7591 `token_endpoint_auth_method`: a secret, or `private_key_jwt` with `jwks`. */
  authMethod: AuthMethod;
  /** Registered public keys (private_key_jwt clients only). */
  jwks: JWK[];
  /** Or where the client publishes them (RFC 7591 `jwks_uri`), fetched on use. */
  jwksUri: string | null;
  /** The tenant the client acts in and the PHI shard it is placed on; null for a platform client. */
  tenant: { id: string; shard: number; moving?: boolean } | null;
  /** Not stored: the bootstrap client defined by configuration. */
  bootstrap?: boolean;
}

/** A client row with its tenant's placement and state (one LEFT JOIN: still one query on the token path). */
export type ClientRow = typeof clients.$inferSelect & { tenantShard: number | null; tenantOffboardedAt: string | null; tenantMovingTo?: number | null };

/**
 * Which clients an admin caller may see: `null` for a platform admin (all of them), else the
 * caller's tenant id. A client outside it is answered exactly as one that does not exist.
 */
export type Visibility = string | null;

export const CLIENT_WITH_TENANT = {
  ...getTableColumns(clients),
  tenantShard: tenants.shard,
  tenantOffboardedAt: tenants.offboardedAt,
  // A tenant being moved to another shard gets no token until the move ends (src/tenant-move.ts).
  tenantMovingTo: tenants.movingTo,
};

/**
 * Whether a stored client may authenticate: enabled, and either a platform client or one whose
 * tenant exists and is not offboarded (offboarding also disables its clients; this holds even for
 * one created in the same instant).
 */
function usable(r: ClientRow): boolean {
  return !r.disabled && (r.tenantId === null || (r.tenantShard !== null && r.tenantOffboardedAt === null));
}

export const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
const asAuthMethod = (v: string): AuthMethod => AUTH_METHODS.find((m) => m === v) ?? "client_secret_basic";

function fromRow(r: ClientRow): Client {
  return {
    id: r.id,
    name: r.name,
    roles: JSON.parse(r.roles) as string[],
    scopes: JSON.parse(r.scopes) as string[],
    deviceId: r.deviceId,
    disabled: r.disabled,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    disabledAt: r.disabledAt,
    authMethod: asAuthMethod(r.authMethod),
    jwks: storedKeys(r.jwks),
    jwksUri: r.jwksUri,
    // A row whose tenant row is missing is never `usable`: the shard here is then only shown, never signed.
    tenant: r.tenantId === null ? null : { id: r.tenantId, shard: r.tenantShard ?? 0, moving: (r.tenantMovingTo ?? null) !== null },
  };
}

/** The row as a client when it may authenticate with a private_key_jwt assertion. */
export function assertionClient(row: ClientRow | undefined): Client | undefined {
  return row && usable(row) && row.authMethod === "private_key_jwt" ? fromRow(row) : undefined;
}

/** Public view of a client: never the secret or its hash. */
export function clientView(c: Client) {
  return {
    client_id: c.id,
    name: c.name,
    roles: c.roles,
    scopes: c.scopes,
    allowed_scopes: allowedScopes(c.roles, c.scopes).sort(),
    device_id: c.deviceId,
    tenant_id: c.tenant?.id ?? null,
    disabled: c.disabled,
    created_at: c.createdAt,
    created_by: c.createdBy,
    disabled_at: c.disabledAt,
    token_endpoint_auth_method: c.authMethod,
    ...(c.authMethod === "private_key_jwt" ? (c.jwksUri ? { jwks_uri: c.jwksUri } : { jwks: { keys: c.jwks } }) : {}),
  };
}

function bootstrapClient(cfg: AuthConfig): Client | undefined {
  if (!cfg.BOOTSTRAP_CLIENT_ID || !cfg.BOOTSTRAP_CLIENT_SECRET) return undefined;
  return {
    id: cfg.BOOTSTRAP_CLIENT_ID,
    name: "bootstrap admin (from configuration)",
    roles: ["admin"],
    scopes: cfg.bootstrapScopes,
    deviceId: null,
    disabled: false,
    createdAt: "1970-01-01T00:00:00.000Z",
    createdBy: "configuration",
    disabledAt: null,
    authMethod: "client_secret_basic",
    jwks: [],
    jwksUri: null,
    tenant: null,
    bootstrap: true,
  };
}

export class ClientStore {
  private ormInstance: DrizzleD1Database | undefined;
  constructor(
    private readonly db: D1Database,
    private readonly cfg: AuthConfig,
  ) {}

  /** Built on first use: token issuance with a client secret runs one prepared statement and never needs it. */
  private get orm(): DrizzleD1Database {
    return (this.ormInstance ??= drizzle(this.db));
  }

  /** The client, when the caller may see it (`visibleTo`); the bootstrap client is a platform client. */
  async get(id: string, visibleTo: Visibility = null): Promise<Client | undefined> {
    const boot = bootstrapClient(this.cfg);
    if (boot && id === boot.id) return visibleTo === null ? boot : undefined;
    const row = await this.joined().where(and(eq(clients.id, id), this.within(visibleTo))).get();
    return row ? fromRow(row) : undefined;
  }

  private joined() {
    return this.orm.select(CLIENT_WITH_TENANT).from(clients).leftJoin(tenants, eq(tenants.id, clients.tenantId));
  }

  private within(visibleTo: Visibility): SQL | undefined {
    return visibleTo === null ? undefined : eq(clients.tenantId, visibleTo);
  }

  /**
   * Checks a client's credentials. Always does the same hashing work, whether
   * the client exists or not, so timing tells nothing about which ids exist.
   */
  async authenticate(id: string, secret: string): Promise<Client | undefined> {
    const boot = bootstrapClient(this.cfg);
    if (boot && this.cfg.BOOTSTRAP_CLIENT_SECRET && id === boot.id) {
      return (await timingSafeEqualStr(secret, this.cfg.BOOTSTRAP_CLIENT_SECRET)) ? boot : undefined;
    }
    return this.verify(await this.lookup(id).get(), secret);
  }

  /** The configured bootstrap client when `id` names it (no storage involved). */
  bootstrap(id: string): Client | undefined {
    const boot = bootstrapClient(this.cfg);
    return boot && this.cfg.BOOTSTRAP_CLIENT_SECRET && id === boot.id ? boot : undefined;
  }

  /** The query that loads a stored client (batched with the lockout check on the token path). */
  lookup(id: string) {
    return this.joined().where(eq(clients.id, id));
  }

  /**
   * Checks a secret against a looked-up row, with the same work whether the row exists or not.
   * A private_key_jwt client has no secret (its hash column is empty): it never matches.
   */
  async verify(row: ClientRow | undefined, secret: string): Promise<Client | undefined> {
    // One digest of the secret, compared in constant time with the stored one (both SHA-256 hex, 64 characters).
    const given = await sha256Hex(secret);
    const ok = digestsEqual(given, row?.secretHash || "0".repeat(64));
    if (!row || !ok || !usable(row) || row.authMethod === "private_key_jwt") return undefined;
    return fromRow(row);
  }

  /**
   * Creates a client in `tenantId` (null: a platform client). The insert happens only while the
   * tenant exists and is not offboarded, in the same statement, so a client created while its
   * tenant is being offboarded is either disabled with the others or never created.
   */
  async create(input: {
    name: string;
    roles: string[];
    scopes: string[];
    deviceId?: string | null;
    createdBy: string;
    authMethod?: AuthMethod;
    jwks?: JWK[];
    jwksUri?: string;
    tenantId: string | null;
  }): Promise<{ client: Client; secret: string | undefined }> {
    const id = randomToken(12, "cli_");
    const asymmetric = input.authMethod === "private_key_jwt";
    // RFC 6749 10.10: credentials must be unguessable; 256 bits from the CSPRNG.
    const secret = asymmetric ? undefined : randomToken(32, "cs_");
    const row: typeof clients.$inferSelect = {
      id,
      name: input.name,
      secretHash: secret === undefined ? "" : await sha256Hex(secret),
      roles: JSON.stringify(input.roles),
      scopes: JSON.stringify(input.scopes),
      deviceId: input.deviceId ?? null,
      disabled: false,
      createdAt: new Date().toISOString(),
      createdBy: input.createdBy,
      disabledAt: null,
      authMethod: input.authMethod ?? "client_secret_basic",
      jwks: asymmetric && input.jwksUri === undefined ? JSON.stringify(input.jwks ?? []) : null,
      jwksUri: asymmetric ? (input.jwksUri ?? null) : null,
      tenantId: input.tenantId,
    };
    const insert = this.db
      .prepare(
        `INSERT INTO clients (id, name, secret_hash, roles, scopes, device_id, disabled, created_at, created_by, disabled_at, token_endpoint_auth_method, jwks, tenant_id, jwks_uri)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, NULL, ?9, ?10, ?11, ?12
         WHERE ?11 IS NULL OR EXISTS (SELECT 1 FROM tenants WHERE id = ?11 AND offboarded_at IS NULL)
         RETURNING id`,
      )
      .bind(row.id, row.name, row.secretHash, row.roles, row.scopes, row.deviceId, row.createdAt, row.createdBy, row.authMethod, row.jwks, row.tenantId, row.jwksUri);
    if (input.tenantId === null) {
      await insert.run();
      return { client: fromRow({ ...row, tenantShard: null, tenantOffboardedAt: null }), secret };
    }
    // One round trip (a D1 batch is one transaction): the insert, and the tenant it went to or did not.
    const [inserted, tenant] = await this.db.batch<{ id?: string; shard?: number; offboarded_at?: string | null }>([
      insert,
      this.db.prepare("SELECT shard, offboarded_at FROM tenants WHERE id = ?").bind(input.tenantId),
    ]);
    const t = tenant?.results[0];
    if (!t || t.shard === undefined) throw new ApiError(400, "tenant_not_found", "No tenant has this tenant_id.");
    if (inserted?.results.length !== 1) throw new ApiError(409, "tenant_offboarded", "This tenant is offboarded: it can have no new clients.");
    return { client: fromRow({ ...row, tenantShard: t.shard, tenantOffboardedAt: null }), secret };
  }

  async list(limit: number, after: string | undefined, visibleTo: Visibility = null): Promise<Client[]> {
    const rows = await this.joined()
      .where(and(after ? gt(clients.id, after) : undefined, this.within(visibleTo)))
      .orderBy(asc(clients.id))
      .limit(limit)
      .all();
    return rows.map(fromRow);
  }

  /** Disables a client the caller may see; another tenant's client is 404, as if it did not exist. */
  async disable(id: string, visibleTo: Visibility = null): Promise<Client> {
    const boot = bootstrapClient(this.cfg);
    if (boot && id === boot.id && visibleTo === null) {
      throw new ApiError(409, "bootstrap_client", "The bootstrap client is defined by configuration; remove its secret to disable it (keep its id until its tokens have expired).");
    }
    if (boot && id === boot.id) throw new ApiError(404, "client_not_found", "No client has this id.");
    // One round trip: the update, then the row as it is now (a D1 batch runs in order, as one transaction).
    const [, rows] = await this.orm.batch([
      this.orm
        .update(clients)
        .set({ disabled: true, disabledAt: new Date().toISOString() })
        .where(and(eq(clients.id, id), eq(clients.disabled, false), this.within(visibleTo))),
      this.joined().where(and(eq(clients.id, id), this.within(visibleTo))),
    ]);
    const row = rows[0];
    if (!row) throw new ApiError(404, "client_not_found", "No client has this id.");
    return fromRow(row);
  }

  /** Disables every client bound to the device; resolves to the ids it disabled. */
  async disableByDevice(deviceId: string): Promise<string[]> {
    const rows = await this.orm
      .update(clients)
      .set({ disabled: true, disabledAt: new Date().toISOString() })
      .where(and(eq(clients.deviceId, deviceId), eq(clients.disabled, false)))
      .returning({ id: clients.id })
      .all();
    return rows.map((r) => r.id);
  }
}
