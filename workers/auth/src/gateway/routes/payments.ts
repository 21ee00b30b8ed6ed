import type { RouteScope } from "./types";

/** `/v1/payments` routes. */
export const PAYMENTS_ROUTES: readonly RouteScope[] = [
  { method: "POST", path: "/payment-methods", scopes: ["payment:write"] },
  { method: "GET", path: "/payment-methods/:id", scopes: ["payment:read"] },
  { method: "POST", path: "/", scopes: ["payment:write"] },
  { method: "GET", path: "/", scopes: ["payment:read"] },
  { method: "GET", path: "/ledger/balance", scopes: ["audit:read"] },
  { method: "GET", path: "/ledger/daily", scopes: ["audit:read"] },
  { method: "GET", path: "/audit", scopes: ["audit:read"] },
  { method: "GET", path: "/audit/verify", scopes: ["audit:read"] },
  { method: "GET", path: "/refunds/:id", scopes: ["payment:read"] },
  { method: "POST", path: "/refunds/:id/approve", scopes: ["payment:approve"] },
  { method: "GET", path: "/:id", scopes: ["payment:read"] },
  { method: "POST", path: "/:id/capture", scopes: ["payment:write"] },
  { method: "POST", path: "/:id/void", scopes: ["payment:write"] },
  { method: "POST", path: "/:id/refunds", scopes: ["payment:refund"] },
];
