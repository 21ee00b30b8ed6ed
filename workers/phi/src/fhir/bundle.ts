import { z } from "@hono/zod-openapi";
import { reasonPhrase } from "../../../../shared/errors";

/**
 * What `POST /v1/phi` accepts: a FHIR R4 Bundle of type `transaction` or `batch`
 * (R4 bundle.html, http.html#transaction). Only the envelope is checked here; each
 * entry's resource is checked against its own schema once `urn:uuid:` references are
 * resolved (service/bundle-plan.ts). Unknown elements are refused, as everywhere.
 */

/** Entries per Bundle at most: ~4 D1 statements each keeps one transaction's batch small and short. */
export const BUNDLE_MAX_ENTRIES = 100;

const BundleRequest = z.strictObject({
  method: z.enum(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
  url: z.string().min(1).max(2048),
  ifNoneMatch: z.string().max(64).optional(),
  ifModifiedSince: z.string().max(64).optional(),
  ifMatch: z.string().max(64).optional(),
  ifNoneExist: z.string().max(512).optional(),
});

const BundleEntryIn = z.strictObject({
  fullUrl: z.string().max(2048).optional(),
  resource: z.record(z.string(), z.unknown()).optional(),
  request: BundleRequest,
});

export const BundleIn = z
  .strictObject({
    resourceType: z.literal("Bundle"),
    id: z.string().max(64).optional(),
    meta: z.record(z.string(), z.unknown()).optional(),
    language: z.string().max(32).optional(),
    identifier: z.record(z.string(), z.unknown()).optional(),
    type: z.enum(["transaction", "batch"]),
    timestamp: z.string().max(64).optional(),
    entry: z.array(BundleEntryIn).optional(),
  })
  .openapi("BundleRequest", { description: `A transaction or batch Bundle (at most ${BUNDLE_MAX_ENTRIES} entries)` });

export type BundleInput = z.infer<typeof BundleIn>;
export type BundleEntryInput = z.infer<typeof BundleEntryIn>;
export type EntryMethod = BundleEntryInput["request"]["method"];

/** One entry of a transaction-response / batch-response Bundle. */
export interface ResponseEntry {
  fullUrl?: string;
  resource?: Record<string, unknown>;
  response: { status: string; location?: string; etag?: string; lastModified?: string; outcome?: Record<string, unknown> };
}

/** FHIR's processing order for a transaction (R4 http.html#trules): DELETE, POST, PUT/PATCH, GET/HEAD. */
export function processingRank(method: EntryMethod): number {
  switch (method) {
    case "DELETE":
      return 0;
    case "POST":
      return 1;
    case "PUT":
    case "PATCH":
      return 2;
    default:
      return 3;
  }
}

/** `entry.response.status`: the HTTP status code, then its reason phrase. */
export function statusLine(status: number): string {
  return `${status} ${reasonPhrase(status) ?? ""}`.trim();
}
