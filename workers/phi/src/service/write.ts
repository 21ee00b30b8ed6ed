import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import type { PhiSettings } from "../config";
import { indexEntries } from "../fhir/index-tokens";
import type { ResourceType } from "../fhir/search-params";
import { recordSuccess } from "../audit/middleware";
import type { AuditAction } from "../audit/describe";
import { readHead, writeVersionStatements, type VersionRow } from "../store/resources";
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
    // The batch failed as a whole (nothing written). If another writer took this
    // version number meanwhile, say so (FHIR: 409 for a concurrent update) rather than 503.
    const head = await readHead(scopeOf(c), v.type, v.id).catch(() => null);
    if (v.versionId > 1 && head && head.version_id >= v.versionId) {
      throw new ApiError(409, "version_conflict", "Another update of this resource happened at the same time; read it again.");
    }
    throw err;
  }
  return { row, resource };
}
