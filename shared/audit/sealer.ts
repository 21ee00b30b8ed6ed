import { DurableObject } from "cloudflare:workers";
import { ApiError } from "../errors";
import { logger } from "../logger";
import { counter, gauge } from "../metrics";
import { scheduleMetricsFlush } from "../metrics-export";
import type { TelemetryEnv } from "../telemetry/target";
import { sealPending, type ChainSpec, type Checkpoint } from "./seal";

/**
 * The single sealer of one chain: a Durable Object (one instance per chain, by
 * name) that links pending records on its alarm. One object is one writer, so
 * the chain is linked in one order without any lock; the alarm runs after at
 * most half the configured delay, survives restarts and evictions, and is
 * retried by the runtime when a run throws (cloudflare/azul sequences its CT
 * log the same way, one object per shard on an alarm). Requests never wait for
 * it: they nudge it from their own `waitUntil` (nudgeSealer below).
 */
export interface SealerSettings {
  db: D1Database;
  chain: ChainSpec;
  delayMs: number;
  /** The worker (the metrics' `service.name`) and the database's binding (their `database` label). */
  service: string;
  database: string;
}

/**
 * The most a D1 database may hold (Cloudflare's limit per database, Workers Paid), and the share of it past which
 * the sealer warns. Audit records are never deleted, so a chain's database only grows (README, "Audit trail").
 */
export const D1_DATABASE_LIMIT_BYTES = 10_000_000_000;
export const D1_SIZE_WARN_RATIO = 0.8;
const WARN_EVERY_MS = 10 * 60_000;

/** Each audited database's size after its sealer's last run, by binding: what an operator alerts on (ops/alerts.yaml). */
const databaseSize = gauge("d1_database_size_bytes", "Size of an audited D1 database after its sealer's last run", "By");
/** Runs that refused to seal because the chain no longer extends the sealer's checkpoint (ops/alerts.yaml pages on any). */
const sealRefused = counter("audit_seal_refused_total", "Sealing runs refused because the audit chain no longer extends the sealer's own checkpoint");
/** Per database, when this isolate last warned that it is filling (plain data). */
const lastWarned = new Map<string, number>();

/**
 * After a sealing run: the database's size as a gauge (exported in the run's own waitUntil when an export is due),
 * and a warning at most every ten minutes while it is past D1_SIZE_WARN_RATIO of the limit.
 */
export function reportDatabaseSize(
  settings: Pick<SealerSettings, "service" | "database">,
  bytes: number,
  env: TelemetryEnv,
  ctx: { waitUntil(p: Promise<unknown>): void },
  now = Date.now(),
): void {
  if (bytes <= 0) return;
  databaseSize.set(bytes, { database: settings.database });
  if (bytes >= D1_DATABASE_LIMIT_BYTES * D1_SIZE_WARN_RATIO && now - (lastWarned.get(settings.database) ?? 0) >= WARN_EVERY_MS) {
    lastWarned.set(settings.database, now);
    logger.warn("d1_database_filling", { database: settings.database, bytes, limit_bytes: D1_DATABASE_LIMIT_BYTES });
  }
  scheduleMetricsFlush(env, ctx, settings.service);
}

/** AUDIT_SEAL_DELAY_MS: the most a record waits to be sealed (default 2 s). */
export function sealDelayMs(raw: string | undefined): number {
  const n = Number(raw ?? "");
  return Number.isInteger(n) && n >= 20 && n <= 600_000 ? n : 2000;
}

const NUDGED = "nudged_at";
const CHECKPOINT = "checkpoint";

export abstract class AuditSealer<E = unknown> extends DurableObject<E> {
  protected abstract settings(): SealerSettings;

  /** A request wrote records: make sure a run happens within the delay. Never waits for the run. */
  async nudge(): Promise<void> {
    const { delayMs } = this.settings();
    const now = Date.now();
    await this.ctx.storage.put(NUDGED, now);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + Math.floor(delayMs / 2));
  }

  /** The last checkpoint this sealer recorded, kept in its own storage too (outside the audited database). */
  async checkpoint(): Promise<Checkpoint | null> {
    return (await this.ctx.storage.get<Checkpoint>(CHECKPOINT)) ?? null;
  }

  override async alarm(): Promise<void> {
    const settings = this.settings();
    const { db, chain, delayMs } = settings;
    const started = Date.now();
    try {
      const run = await sealPending(db, chain, new Date(started), undefined, await this.checkpoint());
      if (run.regressed) {
        // Records the sealer had sealed were unsealed, edited or removed behind the triggers: linking now would
        // re-seal them. Nothing is written; the records stay pending, verify reports the break, and every later
        // run (each nudge arms one) refuses and reports again until an operator has looked.
        sealRefused.add(1, { database: settings.database });
        logger.error("audit_chain_regressed", { table: chain.table, reason: run.regressed });
        reportDatabaseSize(settings, run.databaseBytes, this.env as TelemetryEnv, this.ctx);
        return;
      }
      if (run.checkpoint) await this.ctx.storage.put(CHECKPOINT, run.checkpoint);
      reportDatabaseSize(settings, run.databaseBytes, this.env as TelemetryEnv, this.ctx);
      const nudged = (await this.ctx.storage.get<number>(NUDGED)) ?? 0;
      if (run.more) {
        await this.ctx.storage.setAlarm(Date.now());
      } else if (run.sealed > 0 || nudged > started - delayMs) {
        // A record committed after this run read the backlog may belong to an isolate that
        // nudged recently and will not nudge again yet: one more run covers it.
        await this.ctx.storage.setAlarm(Date.now() + Math.floor(delayMs / 2));
      }
      if (run.sealed > 0) logger.debug("audit_sealed", { table: chain.table, sealed: run.sealed, up_to: run.checkpoint?.sealed_up_to ?? 0 });
    } catch (err) {
      logger.error("audit_seal_failed", { table: chain.table, error_class: err instanceof Error ? err.name : typeof err });
      // The runtime retries a failed alarm with back-off; records stay pending (and protected) meanwhile.
      throw err;
    }
  }
}

/** What a request needs of the sealer binding (its stub's one method). */
export interface SealerNamespace {
  idFromName(name: string): DurableObjectId;
  get(id: DurableObjectId): { nudge(): Promise<void>; checkpoint(): Promise<Checkpoint | null> };
}

/** For verify: the sealer's own copy of its latest checkpoint. 503 when the object cannot answer. */
export async function sealerCheckpoint(ns: SealerNamespace, chain: string): Promise<Checkpoint | null> {
  try {
    return await ns.get(ns.idFromName(chain)).checkpoint();
  } catch (err) {
    logger.error("audit_sealer_unavailable", { table: chain, error_class: err instanceof Error ? err.name : typeof err });
    throw new ApiError(503, "sealer_unavailable", "The audit sealer could not be reached; verify again shortly.");
  }
}

/** Per chain, when this isolate last nudged its sealer (ms): plain data, no promise kept. */
const lastNudge = new Map<string, number>();

/**
 * Nudges the chain's sealer in the request's own `waitUntil`, at most once per
 * quarter of the delay per isolate. A record this skips is still sealed in time:
 * the sealer runs again after any run that sealed something or followed a recent nudge.
 */
export function nudgeSealer(
  ns: SealerNamespace,
  chain: string,
  delayMs: number,
  waitUntil: (p: Promise<unknown>) => void,
  now = Date.now(),
): boolean {
  if (now - (lastNudge.get(chain) ?? 0) < delayMs / 4) return false;
  lastNudge.set(chain, now);
  waitUntil(
    ns
      .get(ns.idFromName(chain))
      .nudge()
      .catch((err: unknown) => {
        // Let the next request try again; the records stay pending and protected meanwhile.
        if (lastNudge.get(chain) === now) lastNudge.delete(chain);
        logger.warn("audit_nudge_failed", { table: chain, error_class: err instanceof Error ? err.name : typeof err });
      }),
  );
  return true;
}

/**
 * From a Hono context: nudge in that request's `waitUntil`. A context without an
 * execution context (`app.request()` in a unit test) nudges nothing; its
 * records are sealed by the next nudge or alarm.
 */
export function nudgeFromRequest(
  c: { readonly executionCtx: { waitUntil(p: Promise<unknown>): void } },
  ns: SealerNamespace,
  chain: string,
  delayRaw: string | undefined,
): void {
  let ctx: { waitUntil(p: Promise<unknown>): void };
  try {
    ctx = c.executionCtx;
  } catch {
    return;
  }
  nudgeSealer(ns, chain, sealDelayMs(delayRaw), (p) => ctx.waitUntil(p));
}
