import type { PhiEnv } from "../env";
import type { Context } from "hono";
import { sqlValue } from "../../../../shared/audit/append";
import { ApiError } from "../../../../shared/errors";
import { decideReadable, enforce } from "../access";
import { safeId, type AuditAction } from "../audit/describe";
import { recordAccess } from "../audit/middleware";
import { countRecord } from "../audit/trail";
import type { ResourceType } from "../fhir/search-params";
import { headStatement, versionStatement, type VersionRow } from "../store/resources";
import { scopeOf } from "../store/scope";
import { phiSettings } from "../config";
import { presentVersion, resourceHeaders, type FhirResource } from "./present";

/**
 * A read and its audit record in ONE D1 batch (one round trip, one snapshot):
 * the select, and an INSERT whose outcome SQL decides from the same rows:
 * success, or failed with reason `not_found` / `gone` (HIPAA 164.312(b): the
 * record says what really happened). The record is written before any PHI
 * leaves; if it cannot be, the whole batch fails and the request gets 503.
 */
export async function readAudited(
  c: Context<PhiEnv>,
  action: Extract<AuditAction, "read" | "vread">,
  type: ResourceType,
  id: string,
  versionId?: number,
): Promise<VersionRow | null> {
  const scope = scopeOf(c);
  const select = versionId === undefined ? headStatement(scope, type, id) : versionStatement(scope, type, id, versionId);
  const version = versionId === undefined ? "ORDER BY version_id DESC LIMIT 1" : "AND version_id = ?";
  const vb = [scope.tenant, type, id, ...(versionId === undefined ? [] : [versionId])];
  // The record reads the version once: `v` is that row, or NULLs when there is no such version (a LEFT JOIN
  // from one constant row, so the record is written either way). `deleted` is 1 for a tombstone.
  const found = sqlValue(
    `(SELECT 1) LEFT JOIN (SELECT deleted, patient_id FROM resource_versions WHERE tenant_id = ? AND resource_type = ? AND id = ? ${version}) AS v`,
    ...vb,
  );
  // Only ids shaped like the server's are recorded (a client may put anything in a URL).
  const recordedId = safeId(id);
  const [result] = await recordAccess(c, { action, resourceType: type, resourceId: recordedId, patientIds: [] }, new Date(), [select], {
    from: found,
    outcome: sqlValue(`CASE WHEN v.deleted IS NULL OR v.deleted = 1 THEN 'failed' ELSE 'success' END`),
    reason: sqlValue(`CASE WHEN v.deleted IS NULL THEN 'not_found' WHEN v.deleted = 1 THEN 'gone' ELSE '' END`),
    // A Patient read concerns that patient even when it is missing; anything else, its subject when known.
    patient_ids: type === "Patient" ? recordedId : sqlValue(`COALESCE(v.patient_id, '')`),
  });
  const row = (result?.results[0] as VersionRow | undefined) ?? null;
  countRecord(action, row && !row.deleted ? "success" : "failed");
  return row;
}

/**
 * A read or vread of one resource, answered: the version and its audit record in one batch (readAudited), a missing
 * version 404 and a deleted one 410 (both recorded as such), else the resource decrypted with its FHIR headers. The
 * caller checked the scopes. Shared by the routes and by the read path without the app (src/read-first.ts).
 */
export async function readResource(
  c: Context<PhiEnv>,
  action: Extract<AuditAction, "read" | "vread">,
  type: ResourceType,
  id: string,
  versionId?: number,
): Promise<{ resource: FhirResource; headers: Record<string, string> }> {
  const cfg = await phiSettings(c);
  // The select and its audit record are one batch: the record is written before any PHI leaves (else 503).
  const head = await readAudited(c, action, type, id, versionId);
  enforce(decideReadable(head));
  if (!head) throw new ApiError(404, "not_found");
  return { resource: await presentVersion(cfg.bodies, head), headers: resourceHeaders(head, false) };
}
