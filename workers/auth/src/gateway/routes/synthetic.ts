import type { RouteScope } from "./types";

/** `/v1/synthetic` routes. Loading writes into phi, so it also needs the caller's `phi:write`. */
export const SYNTHETIC_ROUTES: readonly RouteScope[] = [
  { method: "GET", path: "/patients", scopes: ["synthetic:generate"] },
  // Idempotent by conditional create: it learns whether a patient exists, so it needs phi:read too.
  { method: "POST", path: "/load", scopes: ["synthetic:generate", "phi:write", "phi:read"] },
];
