import { DEVICES_ROUTES } from "./routes/devices";
import { PAYMENTS_ROUTES } from "./routes/payments";
import { PHI_ROUTES } from "./routes/phi";
import { SYNTHETIC_ROUTES } from "./routes/synthetic";
import type { RouteScope } from "./routes/types";

export type ServiceBinding = "PHI" | "PAYMENTS" | "SYNTHETIC" | "DEVICES";

export interface Service {
  /** Client path prefix; the internal worker serves the same paths. */
  prefix: string;
  binding: ServiceBinding;
  routes: readonly RouteScope[];
}

/**
 * The one table of every internal route and the scopes it needs. The gateway
 * forwards nothing else: a path not listed here is a 404 at the edge (default deny).
 */
export const SERVICES: readonly Service[] = [
  { prefix: "/v1/phi", binding: "PHI", routes: PHI_ROUTES },
  { prefix: "/v1/payments", binding: "PAYMENTS", routes: PAYMENTS_ROUTES },
  { prefix: "/v1/synthetic", binding: "SYNTHETIC", routes: SYNTHETIC_ROUTES },
  { prefix: "/v1/devices", binding: "DEVICES", routes: DEVICES_ROUTES },
];

/** `prefix` + `path`, without a trailing slash for the service root. */
export function fullPath(prefix: string, path: string): string {
  return path === "/" ? prefix : prefix + path;
}
