import { decryptField, encryptField, fromBase64Url, randomBytes, randomToken, toBase64Url, type Keyring } from "../crypto";
import { ApiError } from "../errors";
import { waitFor, WAIT_FOR_MS } from "../wait-for";

/**
 * Per-tenant data keys (envelope encryption, README "Offboarding"). Each tenant's sealed data in a
 * database (phi's resource bodies on its shard, payments' card vault) is encrypted under the tenant's
 * own AES-256 data key; the data key is stored only wrapped, encrypted under the platform keyring, in
 * that database's `tenant_keys` table. Offboarding destroys the wrapped key: from then on neither the
 * API nor anyone holding a copy of the database and the platform keyring can decrypt the tenant's data.
 *
 * A tenant's key is made the first time anything of the tenant is sealed or read in that database,
 * in one batch that inserts a fresh key unless one exists and reads the one that won, so two isolates
 * racing agree on one key. Unwrapped keys are cached per isolate as plain data (a non-extractable
 * CryptoKey in a Map, no promise), for a bounded time: an isolate learns of an offboarding within
 * `CACHE_MS`, and the gateway already refuses every token of an offboarded tenant before that. The
 * requests that miss while another request of the isolate loads the same key wait for its load
 * (polling the cache on their own timers, never awaiting its promise) rather than each loading it.
 */
export interface TenantKeySource {
  /** The database that holds the tenant's sealed data (a D1 binding or one of its sessions). */
  db: Pick<D1Database, "prepare" | "batch">;
  /** Whose data the key seals ("phi", "payments"): bound into the wrapping, so a wrapped key cannot move. */
  service: string;
  /** Which database of the service (e.g. a shard's binding): part of the cache key. */
  database: string;
  /** The platform keyring (a secret): wraps the data keys; older rows sealed under it directly still decrypt. */
  platform: Keyring;
  tenant: string;
}

/** How long an isolate trusts an unwrapped key it read (it learns of a destroyed key after at most this). */
export const CACHE_MS = 5 * 60_000;
/** Bound on the cache: tenants an isolate serves at once, well above what one isolate sees. */
const MAX_CACHED = 1024;

interface Cached {
  ring: Keyring;
  until: number;
}
const cache = new Map<string, Cached>();
/**
 * Per cache key, when a request of this isolate started loading it (ms): plain data, no promise. A request that
 * misses while a load is in flight polls `cache` on its own timer for at most WAIT_FOR_MS instead of loading too,
 * so a burst on a new isolate (or at a key's expiry) makes one D1 round trip, not one per request.
 */
const loading = new Map<string, number>();

const cacheKey = (src: Pick<TenantKeySource, "service" | "database" | "tenant">) => `${src.service}\u0000${src.database}\u0000${src.tenant}`;
const wrapAad = (service: string, tenant: string, kid: string) => `tenant_keys/${service}/${tenant}/${kid}`;

/** A data key's id: `tk_` and 72 random bits, never one of the platform keyring's ids (those have no `tk_` prefix by convention). */
function newKid(): string {
  return randomToken(9, "tk_");
}

interface KeyRow {
  kid: string;
  wrapped: string | null;
}

async function importDataKey(raw: Uint8Array): Promise<CryptoKey> {
  const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  raw.fill(0);
  return key;
}

/**
 * The keyring the tenant's data in `src.db` is sealed with: its data key encrypts, and the platform
 * keys still decrypt what was sealed before data keys existed. One D1 round trip on an isolate's first
 * use of the tenant in this database (then cached). Throws 410 `tenant_offboarded` once the key is destroyed.
 */
export async function tenantRing(src: TenantKeySource, now = Date.now()): Promise<Keyring> {
  const key = cacheKey(src);
  const hit = cache.get(key);
  if (hit && hit.until > now) return hit.ring;
  // Checked and marked with no await in between, so of requests that miss together only the first loads.
  const started = loading.get(key);
  if (started !== undefined && Date.now() - started < WAIT_FOR_MS) {
    // Its ring once cached; nothing when that load ended without one (it failed, or found the tenant offboarded:
    // this request then loads and answers for itself), or after the wait.
    const landed = await waitFor((waited) => {
      const cached = cache.get(key);
      if (cached && cached.until > now + waited) return { ring: cached.ring };
      return loading.get(key) === started ? undefined : { ring: undefined };
    });
    if (landed?.ring) return landed.ring;
  }
  if (!loading.has(key) && loading.size >= MAX_CACHED) {
    const oldest = loading.keys().next();
    if (!oldest.done) loading.delete(oldest.value);
  }
  const mark = Date.now();
  loading.set(key, mark);
  try {
    return await loadRing(src, key, now);
  } finally {
    if (loading.get(key) === mark) loading.delete(key);
  }
}

async function loadRing(src: TenantKeySource, key: string, now: number): Promise<Keyring> {
  const kid = newKid();
  const raw = randomBytes(32);
  const wrapped = await encryptField(src.platform, toBase64Url(raw), wrapAad(src.service, src.tenant, kid));
  const [, current] = await src.db.batch<KeyRow>([
    src.db
      .prepare("INSERT INTO tenant_keys (tenant_id, kid, wrapped, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING")
      .bind(src.tenant, kid, wrapped, new Date(now).toISOString()),
    src.db.prepare("SELECT kid, wrapped FROM tenant_keys WHERE tenant_id = ?").bind(src.tenant),
  ]);
  const row = current?.results[0];
  if (!row) throw new Error("tenant key row missing after insert");
  if (row.wrapped === null) {
    cache.delete(key);
    throw new ApiError(410, "tenant_offboarded", "This tenant was offboarded: its data keys are destroyed and its data can no longer be read.");
  }
  const material = row.kid === kid ? raw : fromBase64Url(await decryptField(src.platform, row.wrapped, wrapAad(src.service, src.tenant, row.kid)));
  if (row.kid !== kid) raw.fill(0);
  const ring: Keyring = { currentKid: row.kid, keys: new Map([...src.platform.keys, [row.kid, await importDataKey(material)]]) };
  if (cache.size >= MAX_CACHED) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(key, { ring, until: now + CACHE_MS });
  return ring;
}

export interface Destruction {
  tenant: string;
  at: string;
  by: string;
  reason: string;
}

/**
 * The statements that destroy a tenant's data key in one database, for the caller's batch (with its
 * audit record): the wrapped key is first overwritten in place with as many zeros (so its bytes do
 * not linger in the database page), then set NULL, and the row stays as a tombstone that also stops
 * a new key from ever being made. A tenant that never had a key here gets the tombstone alone.
 * Idempotent: a second destruction keeps the first one's time, actor and reason.
 */
export function destroyKeyStatements(db: Pick<D1Database, "prepare">, d: Destruction): D1PreparedStatement[] {
  return [
    db.prepare("UPDATE tenant_keys SET wrapped = printf('%.*c', length(wrapped), '0') WHERE tenant_id = ? AND wrapped IS NOT NULL").bind(d.tenant),
    db
      .prepare(
        `INSERT INTO tenant_keys (tenant_id, kid, wrapped, created_at, destroyed_at, destroyed_by, destroyed_reason) VALUES (?1, '', NULL, ?2, ?2, ?3, ?4)
         ON CONFLICT (tenant_id) DO UPDATE SET wrapped = NULL, destroyed_at = COALESCE(destroyed_at, excluded.destroyed_at),
           destroyed_by = COALESCE(destroyed_by, excluded.destroyed_by), destroyed_reason = COALESCE(destroyed_reason, excluded.destroyed_reason)`,
      )
      .bind(d.tenant, d.at, d.by, d.reason),
  ];
}

/** This isolate forgets every key of the tenant it holds (the isolate that destroyed them). */
export function forgetTenantKeys(tenant: string): void {
  for (const k of cache.keys()) if (k.endsWith(`\u0000${tenant}`)) cache.delete(k);
}
