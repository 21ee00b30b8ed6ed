import { BUNDLE_FLOOR_SCOPES, bundleScopes } from "../../../../../shared/bundle-scopes";
import type { RouteScope } from "./types";

/** `/v1/phi` routes (FHIR R4). */
export const PHI_ROUTES: readonly RouteScope[] = [
  { method: "GET", path: "/metadata", scopes: [], public: true },
  // Batch and transaction Bundles: phi:read for GET entries, phi:write for the others.
  { method: "POST", path: "/", scopes: BUNDLE_FLOOR_SCOPES, scopesFromBody: bundleScopes },
  { method: "POST", path: "/Patient", scopes: ["phi:write"] },
  { method: "GET", path: "/Patient", scopes: ["phi:read"] },
  { method: "PUT", path: "/Patient", scopes: ["phi:write"] },
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
  { method: "GET", path: "/audit", scopes: ["audit:read"] },
  { method: "GET", path: "/audit/verify", scopes: ["audit:read"] },
];
