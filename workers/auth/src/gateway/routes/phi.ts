import { BUNDLE_FLOOR_SCOPES, bundleScopes } from "../../../../../shared/bundle-scopes";
import type { RouteScope } from "./types";

/** `/v1/phi` routes (FHIR R4). */
export const PHI_ROUTES: readonly RouteScope[] = [
  { method: "GET", path: "/metadata", scopes: [], public: true },
  // Batch and transaction Bundles: phi:read for GET entries, phi:write for the others.
  { method: "POST", path: "/", scopes: BUNDLE_FLOOR_SCOPES, scopesFromBody: bundleScopes },
  { method: "POST", path: "/Patient", scopes: ["phi:write"] },
  { method: "GET", path: "/Patient", scopes: ["phi:read"] },
  // Conditional update searches before it writes: it needs read as well (phi checks s, u and c).
  { method: "PUT", path: "/Patient", scopes: ["phi:read", "phi:write"] },
  { method: "POST", path: "/Patient/_search", scopes: ["phi:read"] },
  { method: "GET", path: "/Patient/:id", scopes: ["phi:read"] },
  { method: "PUT", path: "/Patient/:id", scopes: ["phi:write"] },
  { method: "DELETE", path: "/Patient/:id", scopes: ["phi:write"] },
  { method: "GET", path: "/Patient/:id/_history", scopes: ["phi:read"] },
  { method: "GET", path: "/Patient/:id/_history/:vid", scopes: ["phi:read"] },
  { method: "GET", path: "/Patient/:id/$access-log", scopes: ["audit:read"] },
  { method: "POST", path: "/Observation", scopes: ["phi:write"] },
  { method: "GET", path: "/Observation", scopes: ["phi:read"] },
  { method: "POST", path: "/Observation/_search", scopes: ["phi:read"] },
  { method: "GET", path: "/Observation/:id", scopes: ["phi:read"] },
  // Bulk Data export (HL7 Bulk Data Access 2.0): kick-off, the job's status URL, its files.
  // The reader's scope throughout; phi serves a job only to the client that started it.
  { method: "GET", path: "/$export", scopes: ["phi:read"] },
  { method: "POST", path: "/$export", scopes: ["phi:read"] },
  { method: "GET", path: "/Patient/$export", scopes: ["phi:read"] },
  { method: "POST", path: "/Patient/$export", scopes: ["phi:read"] },
  { method: "GET", path: "/$export-status/:job", scopes: ["phi:read"] },
  { method: "DELETE", path: "/$export-status/:job", scopes: ["phi:read"] },
  { method: "GET", path: "/$export-file/:job/:file", scopes: ["phi:read"] },
  { method: "GET", path: "/audit", scopes: ["audit:read"] },
  { method: "GET", path: "/audit/verify", scopes: ["audit:read"] },
];
