import { and, asc, eq, gt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { randomToken, sha256Hex, timingSafeEqualStr } from "../../../shared/crypto";
import { ApiError } from "../../../shared/errors";
import { allowedScopes } from "../../../shared/scopes";
import { DEFAULT_TENANT_ID } from "../../../shared/tenants";
import type { AuthConfig } from "./config";
import type { JWK } from "jose";
import { storedKeys } from "./client-keys";
import { clients } from "./db/schema";

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
  /** Not stored: the bootstrap client defined by configuration. */
  bootstrap?: boolean;
}

export type ClientRow = typeof clients.$inferSelect;

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
  };
}

/** The row as a client when it may authenticate with a private_key_jwt assertion. */
export function assertionClient(row: ClientRow | undefined): Client | undefined {
  return row && !row.disabled && row.authMethod === "private_key_jwt" ? fromRow(row) : undefined;
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
    disabled: c.disabled,
    created_at: c.createdAt,
    created_by: c.createdBy,
    disabled_at: c.disabledAt,
    token_endpoint_auth_method: c.authMethod,
    ...(c.authMethod === "private_key_jwt" ? { jwks: { keys: c.jwks } } : {}),
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
    bootstrap: true,
  };
}

export class ClientStore {
  private readonly orm;
  constructor(
    private readonly db: D1Database,
    private readonly cfg: AuthConfig,
  ) {
    this.orm = drizzle(db);
  }

  async get(id: string): Promise<Client | undefined> {
    const boot = bootstrapClient(this.cfg);
    if (boot && id === boot.id) return boot;
    const row = await this.orm.select().from(clients).where(eq(clients.id, id)).get();
    return row ? fromRow(row) : undefined;
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
    return this.orm.select().from(clients).where(eq(clients.id, id));
  }

  /**
   * Checks a secret against a looked-up row, with the same work whether the row exists or not.
   * A private_key_jwt client has no secret (its hash column is empty): it never matches.
   */
  async verify(row: ClientRow | undefined, secret: string): Promise<Client | undefined> {
    const given = await sha256Hex(secret);
    const ok = await timingSafeEqualStr(given, row?.secretHash || "0".repeat(64));
    if (!row || !ok || row.disabled || row.authMethod === "private_key_jwt") return undefined;
    return fromRow(row);
  }

  async create(input: {
    name: string;
    roles: string[];
    scopes: string[];
    deviceId?: string | null;
    createdBy: string;
    authMethod?: AuthMethod;
    jwks?: JWK[];
  }): Promise<{ client: Client; secret: string | undefined }> {
    const id = randomToken(12, "cli_");
    const asymmetric = input.authMethod === "private_key_jwt";
    // RFC 6749 10.10: credentials must be unguessable; 256 bits from the CSPRNG.
    const secret = asymmetric ? undefined : randomToken(32, "cs_");
    const row: ClientRow = {
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
      jwks: asymmetric ? JSON.stringify(input.jwks ?? []) : null,
      tenantId: DEFAULT_TENANT_ID,
    };
    await this.orm.insert(clients).values(row);
    return { client: fromRow(row), secret };
  }

  async list(limit: number, after?: string): Promise<Client[]> {
    const rows = await this.orm
      .select()
      .from(clients)
      .where(after ? gt(clients.id, after) : undefined)
      .orderBy(asc(clients.id))
      .limit(limit)
      .all();
    return rows.map(fromRow);
  }

  async disable(id: string): Promise<Client> {
    const boot = bootstrapClient(this.cfg);
    if (boot && id === boot.id) {
      throw new ApiError(409, "bootstrap_client", "The bootstrap client is defined by configuration; remove its secret to disable it.");
    }
    const row = await this.orm
      .update(clients)
      .set({ disabled: true, disabledAt: new Date().toISOString() })
      .where(and(eq(clients.id, id), eq(clients.disabled, false)))
      .returning()
      .get();
    if (row) return fromRow(row);
    const existing = await this.get(id);
    if (!existing) throw new ApiError(404, "client_not_found", "No client has this id.");
    return existing;
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
