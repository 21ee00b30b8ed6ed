import { isConditionalConflict } from "../store/bundle-statements";
import { scopeOf } from "../store/scope";
import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError, isStorageError, storageUnavailable } from "../../../../shared/errors";
import { logger } from "../../../../shared/logger";
import { entriesRecorded, entryRecord } from "../audit/entries";
import { outcomeFor, safeId, type AuditAction } from "../audit/describe";
import type { AuditEvent } from "../audit/trail";
import type { PhiSettings } from "../config";
import type { BundleEntryInput, ResponseEntry } from "../fhir/bundle";
import type { ReturnPreference } from "../fhir/prefer";
import { readHead } from "../store/resources";
import { decideEntry, readState, type EntryResult } from "./bundle-entry";
import { entryError, planEntry, refuseDuplicateTargets, resolveResource, type PlannedEntry, type ValidResource } from "./bundle-plan";
import { failureEntry, responseBundle, successEntry, type ResponseBundle } from "./bundle-response";

/**
 * A FHIR batch (R4 http.html#transaction): each entry succeeds or fails on its own and
 * answers with its own status (an OperationOutcome when it failed). Entries may not
 * depend on each other (FHIR), so `urn:uuid:` references are not resolved. D1 round
 * trips: one wave of reads (as for a transaction), then one wave in which each writing
 * entry commits its data with its audit record in a batch of its own and every other
 * entry's record (reads, refusals) goes in one more batch, all concurrently. Every entry
 * leaves one record, success or not. A read's resource is returned only once its record
 * is written: if that batch fails, each entry it held answers 503 `audit_unavailable`
 * (no resource), as the same read sent alone would, while the writes that committed
 * with their own records keep their answers, so a client never sends again a create that
 * was stored. Only when no record at all could be written is the whole answer a 503.
 */
const NO_PLACEHOLDERS: ReadonlyMap<string, string> = new Map();

const ACTION: Record<BundleEntryInput["request"]["method"], AuditAction> = {
  GET: "read",
  HEAD: "read",
  POST: "create",
  PUT: "update",
  DELETE: "delete",
  PATCH: "update",
};

/** The record of an entry that failed, from what its request names (only server-shaped ids). */
function failureEvent(e: BundleEntryInput, err: ApiError): AuditEvent {
  const [type = "", id] = e.request.url.replace(/^.*\/v1\/phi\//, "").split(/[/?#]/);
  const known = type === "Patient" || type === "Observation";
  const resourceId = known && e.request.method !== "POST" ? safeId(id) : "";
  const patientIds = type === "Patient" && resourceId !== "" && resourceId === id ? [resourceId] : [];
  return { action: ACTION[e.request.method], resourceType: known ? type : "", resourceId, patientIds, outcome: outcomeFor(err.status), reason: err.code };
}

function asEntryError(index: number, err: unknown): ApiError {
  if (!(err instanceof ApiError)) throw err;
  return err.detail?.startsWith(`Entry ${index}:`) ? err : entryError(index, err.status, err.code, err.detail ?? err.code);
}

export async function runBatch(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  input: readonly BundleEntryInput[],
  base: string,
  pref: ReturnPreference | undefined,
  now: Date,
): Promise<ResponseBundle> {
  const failed = new Map<number, ApiError>();
  const planned: PlannedEntry[] = [];
  const fullUrls = new Set<string>();
  input.forEach((e, i) => {
    try {
      const p = planEntry(i, e, base);
      if (p.placeholder && fullUrls.has(p.placeholder)) throw entryError(i, 400, "duplicate_fullurl", "Another entry has the same fullUrl.");
      if (p.placeholder) fullUrls.add(p.placeholder);
      planned.push(p);
    } catch (err) {
      failed.set(i, asEntryError(i, err));
    }
  });
  for (const [i, err] of refuseDuplicateTargets(planned)) failed.set(i, err);
  const valid: { p: PlannedEntry; resource?: ValidResource }[] = [];
  for (const p of planned) {
    if (failed.has(p.index)) continue;
    try {
      const resource = resolveResource(p, NO_PLACEHOLDERS);
      valid.push(resource ? { p, resource } : { p });
    } catch (err) {
      failed.set(p.index, asEntryError(p.index, err));
    }
  }
  const state = await readState(c, cfg, valid, failed);
  const results: EntryResult[] = [];
  for (const { p, resource } of valid) {
    if (failed.has(p.index)) continue;
    try {
      results.push(await decideEntry(c, cfg, p, resource, state, now, false));
    } catch (err) {
      failed.set(p.index, asEntryError(p.index, err));
    }
  }

  const success = (r: EntryResult): AuditEvent => ({ ...r.audit, outcome: "success", reason: "" });
  const writes = results.filter((r) => r.statements.length > 0);
  const recordOnly: Indexed[] = [
    ...results.filter((r) => r.statements.length === 0).map((r) => ({ index: r.index, event: success(r) })),
    ...[...failed].map(([i, err]) => ({ index: i, event: failureEvent(input[i] as BundleEntryInput, err) })),
  ];
  const [records, ...committed] = await Promise.allSettled([
    recordOnly.length > 0 ? scopeOf(c).db.batch(recordOnly.map(({ event }) => entryRecord(c, event, now))) : Promise.resolve([]),
    ...writes.map((r) => scopeOf(c).db.batch([...r.statements, entryRecord(c, success(r), now)])),
  ]);
  const events: AuditEvent[] = [];
  if (records?.status === "rejected") unrecorded(c, recordOnly, records.reason, failed);
  else events.push(...recordOnly.map(({ event }) => event));
  // An entry whose batch failed wrote nothing: it answers 409 (a concurrent update took its version) or 503, and is recorded so.
  const late: Indexed[] = [];
  await Promise.all(
    writes.map(async (r, i) => {
      const outcome = committed[i];
      if (outcome?.status !== "rejected") return void events.push(success(r));
      const err = await entryFailure(c, r, outcome.reason);
      failed.set(r.index, err);
      late.push({ index: r.index, event: failureEvent(input[r.index] as BundleEntryInput, err) });
    }),
  );
  if (late.length > 0) {
    try {
      await scopeOf(c).db.batch(late.map(({ event }) => entryRecord(c, event, now)));
      events.push(...late.map(({ event }) => event));
    } catch (err) {
      unrecorded(c, late, err, failed);
    }
  }
  // Nothing recorded and nothing written: the request fails as one (the audit middleware records or refuses it).
  if (events.length === 0 && input.length > 0) throw new ApiError(503, "audit_unavailable", "The audit trail could not be written; nothing was done.");
  entriesRecorded(c, events);

  const byIndex = new Map(results.map((r) => [r.index, r]));
  const answers: ResponseEntry[] = input.map((_, i) => {
    const err = failed.get(i);
    if (err) return failureEntry(err, c.get("requestId"));
    const r = byIndex.get(i);
    if (!r) throw new ApiError(500, "internal_error");
    return successEntry(base, r, pref);
  });
  return responseBundle("batch-response", answers, now);
}

/** An entry and its audit record. */
interface Indexed {
  index: number;
  event: AuditEvent;
}

/**
 * The records of `entries` could not be written: each of them answers 503 `audit_unavailable` instead (a read returns
 * no resource without its record; a refusal whose record is lost is reported as such, as the audit middleware does
 * for a request sent alone). They wrote nothing: their records were their only statements.
 */
function unrecorded(c: Context<PhiEnv>, entries: readonly Indexed[], reason: unknown, failed: Map<number, ApiError>): void {
  logger.error("audit_failure_record_lost", {
    request_id: c.get("requestId"),
    action: "bundle",
    entries: entries.length,
    error_class: reason instanceof Error ? reason.name : typeof reason,
  });
  for (const { index } of entries) failed.set(index, entryError(index, 503, "audit_unavailable", "The audit trail could not be written; nothing was returned."));
}

async function entryFailure(c: Context<PhiEnv>, r: EntryResult, reason: unknown): Promise<ApiError> {
  if (isConditionalConflict(reason)) {
    return entryError(r.index, 409, "conditional_create_conflict", "A Patient matching ifNoneExist was created at the same time; send the entry again (it will match).");
  }
  const head = r.row.version_id > 1 ? await readHead(scopeOf(c), r.row.resource_type, r.row.id).catch(() => null) : null;
  if (head && head.version_id >= r.row.version_id) {
    return entryError(r.index, 409, "version_conflict", "Another update of this resource happened at the same time; read it again.");
  }
  if (!isStorageError(reason)) logger.error("bundle_entry_failed", { request_id: c.get("requestId"), error_class: reason instanceof Error ? reason.name : typeof reason });
  const s = storageUnavailable();
  return entryError(r.index, s.status, s.code, s.detail ?? s.code);
}
