import type { AuditActor } from "../audit/trail";
import type { ResourceType } from "../fhir/search-params";
import type { ChunkProgress } from "./chunk";

/**
 * What an export job keeps in its Durable Object's storage: plain data, written after
 * every chunk, so a restarted object resumes at its cursor. Pure helpers only here.
 */
export interface ExportFile {
  type: ResourceType;
  /** 1, 2, ... within its type (a new file starts above the size bound). */
  n: number;
  /** R2 keys of its parts, one per chunk, served back to back as one file. */
  parts: string[];
  count: number;
  bytes: number;
}

export type JobStatus = "running" | "complete" | "failed";

export interface JobState {
  id: string;
  /** The client that started it: the only one that may poll, cancel or download (export.html#bulk-data-status-request). */
  owner: string;
  /** Who asked, with the tenant whose data alone the export reads. */
  actor: AuditActor;
  /** The tenant's PHI shard: the database every chunk reads (absent in jobs started before shards: 0). */
  shard?: number;
  /** The kick-off URL as the client sent it (the manifest's `request`). */
  request: string;
  types: ResourceType[];
  since: string | null;
  transactionTime: string;
  status: JobStatus;
  /** The last patient id exported ("" before the first chunk): the keyset cursor. */
  cursor: string;
  /** Within the chunk after `cursor`, where each type stands when it takes more than one run (null or absent: at its start). */
  within?: ChunkProgress | null;
  chunks: number;
  patientsDone: number;
  /** Patients at the transaction time; null until the first run counted them. */
  patientsTotal: number | null;
  files: ExportFile[];
  /** Consecutive failed runs (reset by a successful one). */
  failures: number;
  completedAt: string | null;
  /** After this instant nothing of the job is served and its files are deleted. */
  expiresAt: string | null;
}

/** A file above this many bytes (or parts) is closed and the type continues in a new one. */
export const FILE_MAX_BYTES = 256 * 1024 * 1024;
export const FILE_MAX_PARTS = 100;
/** Runs that may fail in a row before the job is given up (each waits longer: 2, 4, 8 ... s). */
export const MAX_FAILURES = 5;

export function fileName(f: Pick<ExportFile, "type" | "n">): string {
  return `${f.type}-${f.n}.ndjson`;
}

export function partKey(jobId: string, type: ResourceType, chunk: number): string {
  return `exports/${jobId}/${type}/${String(chunk).padStart(6, "0")}.ndjson`;
}

/** Adds one chunk's part to the type's open file, or opens the next file when that one is full. */
export function addPart(files: ExportFile[], type: ResourceType, key: string, count: number, bytes: number): ExportFile[] {
  const open = files.filter((f) => f.type === type).at(-1);
  if (open && open.parts.length < FILE_MAX_PARTS && open.bytes + bytes <= FILE_MAX_BYTES) {
    return files.map((f) => (f === open ? { ...f, parts: [...f.parts, key], count: f.count + count, bytes: f.bytes + bytes } : f));
  }
  return [...files, { type, n: (open?.n ?? 0) + 1, parts: [key], count, bytes }];
}

/** `X-Progress` (export.html#response---in-progress-status): a short text, no PHI. */
export function progressText(job: Pick<JobState, "patientsDone" | "patientsTotal" | "chunks">): string {
  if (job.patientsTotal === null) return "starting";
  const pct = job.patientsTotal === 0 ? 100 : Math.min(99, Math.floor((job.patientsDone / job.patientsTotal) * 100));
  return `${pct}% (${job.patientsDone} of ${job.patientsTotal} patients, ${job.chunks} chunks)`;
}

/** The manifest (export.html#response---complete-status); `fileUrl` makes each file's absolute URL. */
export function manifest(job: JobState, fileUrl: (name: string) => string) {
  const order = new Map(job.types.map((t, i) => [t, i]));
  const files = [...job.files].sort((a, b) => (order.get(a.type) ?? 0) - (order.get(b.type) ?? 0) || a.n - b.n);
  return {
    transactionTime: job.transactionTime,
    request: job.request,
    requiresAccessToken: true,
    output: files.map((f) => ({ type: f.type, url: fileUrl(fileName(f)), count: f.count })),
    error: [],
  };
}

/** Seconds a client should wait before polling again: short while the job is young, longer for big jobs. */
export function retryAfterSeconds(job: Pick<JobState, "chunks">): number {
  return job.chunks < 5 ? 1 : 5;
}
