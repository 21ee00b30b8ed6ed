import type { Keyring } from "../../../../shared/crypto";
import { FHIR_JSON } from "../fhir/outcome";
import type { ResourceType } from "../fhir/search-params";
import { unseal } from "../store/seal";
import type { VersionRow } from "../store/resources";

export const BASE = "/v1/phi";

export type FhirResource = Record<string, unknown> & { resourceType: string; id: string };

/** The resource a version row holds, with the server's id and meta (FHIR R4 Resource.meta). */
export async function presentVersion(ring: Keyring, row: VersionRow): Promise<FhirResource> {
  if (row.sealed === null) throw new Error("a tombstone has no body");
  const body = await unseal(ring, row.resource_type, row.id, row.version_id, row.sealed);
  return { ...body, resourceType: row.resource_type, id: row.id, meta: versionMeta(body.meta, row) };
}

export function versionMeta(meta: unknown, row: Pick<VersionRow, "version_id" | "last_updated">): Record<string, unknown> {
  const base = typeof meta === "object" && meta !== null ? meta : {};
  return { ...base, versionId: String(row.version_id), lastUpdated: row.last_updated };
}

export function etag(versionId: number): string {
  return `W/"${versionId}"`;
}

export function versionUrl(type: ResourceType, id: string, versionId: number): string {
  return `${BASE}/${type}/${id}/_history/${versionId}`;
}

/** Headers FHIR clients expect on a resource (https://hl7.org/fhir/R4/http.html#read). */
export function resourceHeaders(row: Pick<VersionRow, "resource_type" | "id" | "version_id" | "last_updated">, withLocation: boolean): Record<string, string> {
  return {
    "Content-Type": FHIR_JSON,
    ETag: etag(row.version_id),
    "Last-Modified": new Date(row.last_updated).toUTCString(),
    ...(withLocation ? { Location: versionUrl(row.resource_type, row.id, row.version_id) } : {}),
  };
}
