import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import type { ChainSpec } from "../audit/seal";
import type { AuditSealer } from "../audit/sealer";

/**
 * Test helpers for the sealed audit chains: drive the real sealer object's alarm
 * (no sleeping), and act as an attacker with raw database access (who drops the
 * guard triggers before editing records).
 */
export interface SealerBinding {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): DurableObjectStub<AuditSealer>;
}

export function sealerOf(ns: SealerBinding, chain: ChainSpec): DurableObjectStub<AuditSealer> {
  return ns.get(ns.idFromName(chain.table));
}

export async function pendingCount(db: D1Database, chain: ChainSpec): Promise<number> {
  return (await db.prepare(`SELECT COUNT(*) AS n FROM ${chain.table} WHERE hash IS NULL`).first<number>("n")) ?? 0;
}

/** Runs the sealer's alarm until nothing is pending (each run is what the runtime would run on time). */
export async function sealAll(db: D1Database, ns: SealerBinding, chain: ChainSpec): Promise<void> {
  const stub = sealerOf(ns, chain);
  for (let i = 0; i < 50; i++) {
    if ((await pendingCount(db, chain)) === 0) return;
    await stub.nudge();
    await runDurableObjectAlarm(stub);
  }
  throw new Error(`${chain.table}: records stayed pending`);
}

/** Runs `fn` with the chain's guard triggers dropped, then puts them back exactly as they were. */
export async function withoutGuards<T>(db: D1Database, table: string, fn: () => Promise<T>): Promise<T> {
  const { results } = await db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?")
    .bind(table)
    .all<{ name: string; sql: string }>();
  for (const t of results) await db.prepare(`DROP TRIGGER ${t.name}`).run();
  try {
    return await fn();
  } finally {
    for (const t of results) await db.prepare(t.sql).run();
  }
}

/**
 * After a test that broke the chain on purpose: the sealer forgets its own checkpoint, so it links what the
 * database holds now (what an operator does only once the incident is recorded; README, "Audit trail").
 */
export async function forgetSealerCheckpoint(ns: SealerBinding, chain: ChainSpec): Promise<void> {
  await runInDurableObject(sealerOf(ns, chain), async (_obj, state) => {
    await state.storage.delete("checkpoint");
  });
}
