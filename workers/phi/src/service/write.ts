import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import type { PhiSettings } from "../config";
import { indexEntries } from "../fhir/index-tokens";
import type { ResourceType } from "../fhir/search-params";
import { sqlValue } from "../../../../shared/audit/append";
import { recordAccess, recordSuccess } from "../audit/middleware";
import { countRecord } from "../audit/trail";
import type { AuditAction } from "../audit/describe";
import { readHead, versionWritten, writeVersionStatements, type VersionRow } from "../store/resources";
import type { Sql } from "../store/search-query";
import { scopeOf } from "../store/scope";
import { seal } from "../store/seal";
import { versionMeta, type FhirResource } from "./present";

export interface NewVersion {
  type: ResourceType;
  id: string;
  versionId: number;
  patientId: string;
  /** The validated resource, or null for a tombstone. */
  body: Record<string, unknown> | null;
  /** Search values of the version (empty for a tombstone: it leaves the index). */
  values: [string, string][];
}

/** A version as stored (the body sealed under the current key) and the resource as the client will read it. */
export async function sealedVersion(cfg: PhiSettings, v: NewVersion, now: Date): Promise<{ row: VersionRow; resource: FhirResource | null }> {
  const lastUpdated = now.toISOString();
  const resource: FhirResource | null = v.body
    ? { ...v.body, resourceType: v.type, id: v.id, meta: versionMeta(v.body.meta, { version_id: v.versionId, last_updated: lastUpdated }) }
    : null;
  const row: VersionRow = {
    resource_type: v.type,
    id: v.id,
    version_id: v.versionId,
    last_updated: lastUpdated,
    deleted: resource ? 0 : 1,
    sealed: resource ? await seal(cfg.bodies, v.type, v.id, v.versionId, resource) : null,
    patient_id: v.patientId,
  };
  return { row, resource };
}

/**
 * Writes one version and its audit record in the same D1 batch (all or nothing):
 * the body sealed under the current key, the index replaced, the record appended.
 * Returns the stored resource as the client will read it.
 */
export async function writeVersion(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  action: AuditAction,
  v: NewVersion,
  now: Date,
): Promise<{ row: VersionRow; resource: FhirResource | null }> {
  const { row, resource } = await sealedVersion(cfg, v, now);
  const index = await indexEntries(cfg.indexKey, v.type, v.values);
  try {
    await recordSuccess(
      c,
      { action, resourceType: v.type, resourceId: v.id, patientIds: [v.patientId] },
      now,
      writeVersionStatements(scopeOf(c), row, index),
    );
  } catch (err) {
    await explainFailedWrite(c, v);
    throw err;
  }
  return { row, resource };
}

/**
 * A create written only while `guard` holds, checked inside the write's own transaction (a conditional create:
 * no live resource matching its criteria). The audit record is in the same batch, its outcome decided by SQL:
 * `success`, or `failed` with reason `conditional_match` when a concurrent create that matches committed first and
 * nothing was written. `written` says which; when false the caller answers with the match.
 */
export async function createGuarded(
  c: Context<PhiEnv>,
  cfg: PhiSettings,
  v: NewVersion,
  guard: Sql,
  now: Date,
): Promise<{ row: VersionRow; resource: FhirResource | null; written: boolean }> {
  const { row, resource } = await sealedVersion(cfg, v, now);
  const index = await indexEntries(cfg.indexKey, v.type, v.values);
  const scope = scopeOf(c);
  const written = versionWritten(scope, row);
  // A failed batch wrote nothing and is the store's error as it is (a create takes no version another writer could take).
  const [insert] = await recordAccess(
    c,
    { action: "create", resourceType: v.type, resourceId: v.id, patientIds: [v.patientId] },
    now,
    writeVersionStatements(scope, row, index, guard),
    {
      // Whether the version was written, looked up once for the three values.
      from: sqlValue(`(SELECT ${written.sql} AS w)`, ...written.binds),
      outcome: sqlValue(`CASE WHEN w THEN 'success' ELSE 'failed' END`),
      reason: sqlValue(`CASE WHEN w THEN '' ELSE 'conditional_match' END`),
      // A create that wrote nothing concerns no patient (the id it would have had never existed).
      patient_ids: sqlValue(`CASE WHEN w THEN ? ELSE '' END`, v.patientId),
    },
  );
  const ok = (insert?.meta.changes ?? 0) > 0;
  countRecord("create", ok ? "success" : "failed");
  return { row, resource, written: ok };
}

/** A failed write batch (nothing written): a concurrent update that took this version number is a 409, not a 503. */
async function explainFailedWrite(c: Context<PhiEnv>, v: NewVersion): Promise<void> {
  if (v.versionId === 1) return;
  const head = await readHead(scopeOf(c), v.type, v.id).catch(() => null);
  if (head && head.version_id >= v.versionId) {
    throw new ApiError(409, "version_conflict", "Another update of this resource happened at the same time; read it again.");
  }
}
