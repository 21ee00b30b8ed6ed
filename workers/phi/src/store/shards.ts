import { MAX_SHARDS } from "../../../../shared/tenants";

/**
 * PHI shards (issue 18): one D1 database per shard, bound as DB (shard 0) and
 * DB_1 ... DB_15. A tenant lives on one shard, recorded by auth when the tenant
 * is created and carried in the signed principal; every query of a request goes
 * to that shard's database. The bindings an environment declares are its shards.
 */
export function shardBinding(shard: number): string {
  return shard === 0 ? "DB" : `DB_${shard}`;
}

function isDatabase(v: unknown): v is D1Database {
  return typeof v === "object" && v !== null && "prepare" in v && "withSession" in v;
}

/** The database of `shard`, or undefined when this environment does not declare it. */
export function shardDatabase(env: Env, shard: number): D1Database | undefined {
  if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS) return undefined;
  const db: unknown = Reflect.get(env, shardBinding(shard));
  return isDatabase(db) ? db : undefined;
}

/** Every declared shard's database, in shard order (shards are numbered without gaps). */
export function shardDatabases(env: Env): D1Database[] {
  const out: D1Database[] = [];
  for (let i = 0; i < MAX_SHARDS; i++) {
    const db = shardDatabase(env, i);
    if (!db) break;
    out.push(db);
  }
  return out;
}
