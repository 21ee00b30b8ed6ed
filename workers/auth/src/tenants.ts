import { randomToken } from "../../../shared/crypto";
import { PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../../../shared/tenants";
import { noteTenantCutoff } from "./revocation/view";

/** A stored tenant (an organization): never `ten_platform`, which only names platform clients. */
export interface Tenant {
  id: string;
  name: string;
  shard: number;
  createdAt: string;
  createdBy: string;
  offboardedAt: string | null;
  offboardedBy: string | null;
  offboardReason: string | null;
  /** When every data service confirmed destroying the tenant's data keys (crypto-shredding). */
  dataKeysDestroyedAt: string | null;
  /** The data services that confirmed that erasure (empty until it completed). */
  dataErasedServices?: string[];
  /** The shard a move under way is copying the tenant to (src/tenant-move.ts); null otherwise. */
  movingTo?: number | null;
}

interface TenantRow {
  id: string;
  name: string;
  shard: number;
  created_at: string;
  created_by: string;
  offboarded_at: string | null;
  offboarded_by: string | null;
  offboard_reason: string | null;
  data_keys_destroyed_at: string | null;
  data_erased_services: string | null;
  moving_to: number | null;
}

const COLUMNS = "id, name, shard, created_at, created_by, offboarded_at, offboarded_by, offboard_reason, data_keys_destroyed_at, data_erased_services, moving_to";

function fromRow(r: TenantRow): Tenant {
  return {
    id: r.id,
    name: r.name,
    shard: r.shard,
    createdAt: r.created_at,
    createdBy: r.created_by,
    offboardedAt: r.offboarded_at,
    offboardedBy: r.offboarded_by,
    offboardReason: r.offboard_reason,
    dataKeysDestroyedAt: r.data_keys_destroyed_at,
    dataErasedServices: r.data_erased_services ? r.data_erased_services.split(",") : [],
    movingTo: r.moving_to,
  };
}

/** What the admin API shows of a tenant. */
export function tenantView(t: Tenant) {
  return {
    id: t.id,
    name: t.name,
    shard: t.shard,
    status: t.offboardedAt ? ("offboarded" as const) : ("active" as const),
    created_at: t.createdAt,
    created_by: t.createdBy,
    offboarded_at: t.offboardedAt,
    offboarded_by: t.offboardedBy,
    offboard_reason: t.offboardReason,
    data_keys_destroyed_at: t.dataKeysDestroyedAt,
    moving_to: t.movingTo ?? null,
  };
}

/**
 * The key two names must not share: compatibility-normalized (full-width and ligature forms fold),
 * lower case, runs of spaces as one. "ACME  Health" and "acme health" are the same organization.
 */
export function tenantNameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/** Whether `id` could name a stored tenant (well formed, and not the reserved platform id). */
export function isStorableTenantId(id: string): boolean {
  return TENANT_ID_PATTERN.test(id) && id !== PLATFORM_TENANT_ID;
}

/**
 * Placement (README "Tenants"): the new tenant goes to the shard among 0 .. shards-1 holding the
 * fewest active tenants, the lowest index on a tie. One statement, so two tenants created at the
 * same moment are placed one after the other by SQLite, never both on a shard counted before either.
 * `ON CONFLICT DO NOTHING` on the name key: no row back means the name is taken.
 */
const PLACE_AND_INSERT = `
WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?1),
pick AS (
  SELECT s.n AS shard FROM s LEFT JOIN tenants t ON t.shard = s.n AND t.offboarded_at IS NULL
  GROUP BY s.n ORDER BY COUNT(t.id), s.n LIMIT 1
)
INSERT INTO tenants (id, name, name_key, shard, created_at, created_by)
SELECT ?2, ?3, ?4, shard, ?5, ?6 FROM pick WHERE true
ON CONFLICT DO NOTHING
RETURNING ${COLUMNS}`;

export class TenantStore {
  constructor(private readonly db: D1Database) {}

  /** The new tenant, or undefined when another tenant has the same name (key). */
  async create(input: { name: string; createdBy: string; shards: number }): Promise<Tenant | undefined> {
    const row = await this.db
      .prepare(PLACE_AND_INSERT)
      .bind(input.shards, randomToken(12, "ten_"), input.name, tenantNameKey(input.name), new Date().toISOString(), input.createdBy)
      .first<TenantRow>();
    return row ? fromRow(row) : undefined;
  }

  async get(id: string): Promise<Tenant | undefined> {
    if (!isStorableTenantId(id)) return undefined;
    const row = await this.db.prepare(`SELECT ${COLUMNS} FROM tenants WHERE id = ?`).bind(id).first<TenantRow>();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Revokes every token of the tenant issued so far (README "Tenants": after moving it to another
   * shard its older tokens name the old one): `tokens_not_before` becomes the next second, so a token
   * issued in this very second is refused too and its client asks again a second later. Refused at
   * once in this isolate and introspection, within the revocation bound in every other isolate.
   * Resolves to the cut-off, or undefined when no tenant has this id.
   */
  async revokeTokens(id: string, nowMs: number): Promise<number | undefined> {
    if (!isStorableTenantId(id)) return undefined;
    const row = await this.db
      .prepare("UPDATE tenants SET tokens_not_before = MAX(COALESCE(tokens_not_before, 0), ?1) WHERE id = ?2 RETURNING tokens_not_before")
      .bind(Math.floor(nowMs / 1000) + 1, id)
      .first<{ tokens_not_before: number }>();
    if (row) noteTenantCutoff(id, row.tokens_not_before);
    return row?.tokens_not_before;
  }

  /** Keyset paging by id: `after` is the last id of the previous page. */
  async list(limit: number, after?: string): Promise<Tenant[]> {
    const { results } = await this.db
      .prepare(`SELECT ${COLUMNS} FROM tenants WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2`)
      .bind(after ?? null, limit)
      .all<TenantRow>();
    return results.map(fromRow);
  }
}
