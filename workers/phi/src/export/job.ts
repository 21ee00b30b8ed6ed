import { DurableObject } from "cloudflare:workers";
import { nudgeSealer, sealDelayMs } from "../../../../shared/audit/sealer";
import { sealerName, shardSealers } from "../audit/sealer";
import { shardDatabase } from "../store/shards";
import { logger } from "../../../../shared/logger";
import type { AuditActor } from "../audit/trail";
import { tenantSettings } from "../config";
import type { ResourceType } from "../fhir/search-params";
import { countPatients, readChunk } from "./chunk";
import { addPart, fileName, MAX_FAILURES, partKey, type ExportFile, type JobState } from "./state";

/**
 * One Bulk Data export job: a Durable Object (one per job, named by its id) that builds
 * the files on its alarm, one chunk per run. Each run reads the next page of patients
 * (keyset on the server id) with their resources and the chunk's audit record in one D1
 * batch, writes one R2 object per type, then records the cursor in its storage and sets
 * the next alarm. A chunk whose patients hold more than EXPORT_CHUNK_ROWS resources of a
 * type takes several runs over the same patients (`within`: where each type stands). A run therefore does a bounded amount of work (a few subrequests, CPU
 * for one chunk's decryption and serialization) whatever the export's size, and a
 * restart, an eviction or a failed run resumes at the stored cursor: the chunk is read
 * again and its objects overwritten under the same keys, so nothing is duplicated.
 * Requests never wait for a run: they read the stored state over RPC.
 */
const JOB = "job";
const NDJSON = "application/fhir+ndjson";

export interface ExportSettings {
  chunkSize: number;
  chunkRows: number;
  ttlMs: number;
}

/**
 * EXPORT_CHUNK_SIZE (patients per chunk, 1..1000, default 250), EXPORT_CHUNK_ROWS (resources of each type per
 * run, 1..100,000, default 10,000: a chunk with more takes several runs) and EXPORT_TTL_SECONDS (default 3600).
 */
export function exportSettings(env: { EXPORT_CHUNK_SIZE?: string; EXPORT_CHUNK_ROWS?: string; EXPORT_TTL_SECONDS?: string }): ExportSettings {
  const size = Number(env.EXPORT_CHUNK_SIZE ?? "");
  const rows = Number(env.EXPORT_CHUNK_ROWS ?? "");
  const ttl = Number(env.EXPORT_TTL_SECONDS ?? "");
  return {
    chunkSize: Number.isInteger(size) && size >= 1 && size <= 1000 ? size : 250,
    chunkRows: Number.isInteger(rows) && rows >= 1 && rows <= 100_000 ? rows : 10_000,
    ttlMs: (Number.isInteger(ttl) && ttl >= 1 && ttl <= 7 * 86_400 ? ttl : 3600) * 1000,
  };
}

export interface JobStart {
  id: string;
  owner: string;
  actor: AuditActor;
  /** The tenant's PHI shard (principal.shard). */
  shard: number;
  request: string;
  types: ResourceType[];
  since: string | null;
  transactionTime: string;
}

/** What a file download streams: the file's parts in order. */
export interface FileParts {
  type: ResourceType;
  parts: string[];
}

export class PhiExportJob extends DurableObject<Env> {
  async start(init: JobStart): Promise<void> {
    const job: JobState = {
      ...init,
      status: "running",
      cursor: "",
      within: null,
      chunks: 0,
      patientsDone: 0,
      patientsTotal: null,
      files: [],
      failures: 0,
      completedAt: null,
      expiresAt: null,
    };
    await this.ctx.storage.put(JOB, job);
    await this.ctx.storage.setAlarm(Date.now());
  }

  /** The job for its owner; null when there is none, it is another client's, or it has expired. */
  async view(owner: string): Promise<JobState | null> {
    const job = await this.ctx.storage.get<JobState>(JOB);
    if (!job || job.owner !== owner) return null;
    if (job.expiresAt !== null && Date.parse(job.expiresAt) <= Date.now()) {
      // Expired: answer as gone now and let the alarm delete it (it may not have run yet).
      await this.ctx.storage.setAlarm(Date.now());
      return null;
    }
    return job;
  }

  async file(owner: string, name: string): Promise<FileParts | null> {
    const job = await this.view(owner);
    const f = job?.status === "complete" ? job.files.find((x) => fileName(x) === name) : undefined;
    return f ? { type: f.type, parts: f.parts } : null;
  }

  /** Cancels (export.html#bulk-data-delete-request): the state first, so a run in flight finds nothing to continue. */
  async cancel(owner: string): Promise<boolean> {
    const job = await this.view(owner);
    if (!job) return false;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    await this.deleteFiles(job.id);
    return true;
  }

  override async alarm(): Promise<void> {
    const job = await this.ctx.storage.get<JobState>(JOB);
    if (!job) return;
    if (job.status !== "running") {
      if (job.expiresAt !== null && Date.parse(job.expiresAt) > Date.now()) {
        await this.ctx.storage.setAlarm(Date.parse(job.expiresAt));
        return;
      }
      await this.ctx.storage.deleteAll();
      await this.deleteFiles(job.id);
      logger.info("export_expired", { job_id: job.id });
      return;
    }
    try {
      await this.runChunk(job);
    } catch (err) {
      await this.failed(job.id, err);
    }
  }

  private async runChunk(job: JobState): Promise<void> {
    const env = this.env;
    const { chunkSize, chunkRows, ttlMs } = exportSettings(env);
    const started = Date.now();
    // The tenant's shard, and only the tenant's rows on it (chunk.ts binds actor.tenantId).
    const shard = job.shard ?? 0;
    const db = shardDatabase(env, shard);
    if (!db) throw new Error(`no database bound for PHI shard ${shard}`);
    const cfg = await tenantSettings(env, db, shard, job.actor.tenantId);
    const total = job.patientsTotal ?? (await countPatients(db, job.actor.tenantId, job.transactionTime));
    const spec = {
      jobId: job.id,
      types: job.types,
      since: job.since,
      transactionTime: job.transactionTime,
      after: job.cursor,
      size: chunkSize,
      rows: chunkRows,
      ...(job.within ? { progress: job.within } : {}),
    };
    const read = await readChunk(db, cfg.bodies, job.actor, spec, new Date());
    nudgeSealer(shardSealers(env.AUDIT_SEALER, shard), sealerName(shard), sealDelayMs(env.AUDIT_SEAL_DELAY_MS), (p) => this.ctx.waitUntil(p));
    const readMs = Date.now() - started;

    const chunk = job.chunks + 1;
    const written: { type: ResourceType; key: string; count: number; bytes: number }[] = [];
    for (const [type, lines] of read.lines) {
      if (lines.length === 0) continue;
      const body = new TextEncoder().encode(lines.join("\n") + "\n");
      const key = partKey(job.id, type, chunk);
      await env.EXPORTS.put(key, body, { httpMetadata: { contentType: NDJSON } });
      written.push({ type, key, count: lines.length, bytes: body.byteLength });
    }
    // Storage is read and written with no other I/O between: a cancel that ran meanwhile is seen here.
    const current = await this.ctx.storage.get<JobState>(JOB);
    if (!current) {
      if (written.length > 0) await env.EXPORTS.delete(written.map((w) => w.key));
      return;
    }
    let files: ExportFile[] = current.files;
    for (const w of written) files = addPart(files, w.type, w.key, w.count, w.bytes);
    const next: JobState = { ...current, files, failures: 0, patientsTotal: total };
    if (read.upper === null) {
      const now = Date.now();
      next.status = "complete";
      next.completedAt = new Date(now).toISOString();
      next.expiresAt = new Date(now + ttlMs).toISOString();
      await this.ctx.storage.put(JOB, next);
      await this.ctx.storage.setAlarm(now + ttlMs);
      logger.info("export_complete", { job_id: job.id, chunks: current.chunks, files: files.length });
      return;
    }
    logger.debug("export_chunk", { job_id: job.id, chunk, patients: read.covered, read_ms: readMs, total_ms: Date.now() - started, chunk_done: read.progress === null });
    next.chunks = chunk;
    if (read.progress) {
      // The same patients again next run, each type from where this one stopped.
      next.within = read.progress;
    } else {
      next.cursor = read.upper;
      next.within = null;
      next.patientsDone = current.patientsDone + read.covered;
    }
    await this.ctx.storage.put(JOB, next);
    await this.ctx.storage.setAlarm(Date.now());
  }

  /** A run failed: try again later with back-off, or give the job up after MAX_FAILURES runs in a row. */
  private async failed(id: string, err: unknown): Promise<void> {
    logger.error("export_chunk_failed", { job_id: id, error_class: err instanceof Error ? err.name : typeof err });
    const current = await this.ctx.storage.get<JobState>(JOB);
    if (!current) return;
    const failures = current.failures + 1;
    if (failures < MAX_FAILURES) {
      await this.ctx.storage.put(JOB, { ...current, failures });
      await this.ctx.storage.setAlarm(Date.now() + 2 ** failures * 1000);
      return;
    }
    const now = Date.now();
    const { ttlMs } = exportSettings(this.env);
    await this.ctx.storage.put(JOB, { ...current, failures, status: "failed", completedAt: new Date(now).toISOString(), expiresAt: new Date(now + ttlMs).toISOString() });
    await this.ctx.storage.setAlarm(now + ttlMs);
  }

  /** Every object of the job, listed by prefix (a part written by a run that raced a cancel included). */
  private async deleteFiles(id: string): Promise<void> {
    let cursor: string | undefined;
    do {
      const page = await this.env.EXPORTS.list({ prefix: `exports/${id}/`, ...(cursor ? { cursor } : {}) });
      if (page.objects.length > 0) await this.env.EXPORTS.delete(page.objects.map((o) => o.key));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
}
