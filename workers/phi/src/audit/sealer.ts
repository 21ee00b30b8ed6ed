import { AuditSealer, sealDelayMs, type SealerNamespace, type SealerSettings } from "../../../../shared/audit/sealer";
import { shardBinding, shardDatabase } from "../store/shards";
import { PHI_CHAIN } from "./trail";

const SHARD = "shard";

/** The sealer object of a shard's chain: shard 0 keeps the name it had before shards (its checkpoints stay). */
export function sealerName(shard: number): string {
  return shard === 0 ? PHI_CHAIN.table : `${PHI_CHAIN.table}@shard-${shard}`;
}

/**
 * The one sealer of each shard's audit chain (one object per shard, named by
 * sealerName): see shared/audit/sealer.ts. The object learns its shard from the
 * first nudge and keeps it in its own storage, so its alarms seal that shard's
 * database after a restart.
 */
export class PhiAuditSealer extends AuditSealer<Env> {
  private shard = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.shard = (await ctx.storage.get<number>(SHARD)) ?? 0;
    });
  }

  /** A request on `shard` wrote records. */
  async nudgeShard(shard: number): Promise<void> {
    if (shard !== this.shard) {
      this.shard = shard;
      await this.ctx.storage.put(SHARD, shard);
    }
    await this.nudge();
  }

  protected settings(): SealerSettings {
    const db = shardDatabase(this.env, this.shard);
    if (!db) throw new Error(`no database bound for PHI shard ${this.shard}`);
    return { db, chain: PHI_CHAIN, delayMs: sealDelayMs(this.env.AUDIT_SEAL_DELAY_MS), service: "phi", database: shardBinding(this.shard) };
  }
}

/** The sealer namespace as shared/audit uses it, for one shard's object. */
export function shardSealers(ns: DurableObjectNamespace<PhiAuditSealer>, shard: number): SealerNamespace {
  return {
    idFromName: (name) => ns.idFromName(name),
    get: (id) => {
      const stub = ns.get(id);
      return { nudge: () => stub.nudgeShard(shard), checkpoint: () => stub.checkpoint() };
    },
  };
}
