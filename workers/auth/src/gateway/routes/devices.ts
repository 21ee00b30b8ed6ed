import type { RouteScope } from "./types";

/** `/v1/devices` routes. Object-level checks (a device acts only as itself) are done by the devices worker. */
export const DEVICES_ROUTES: readonly RouteScope[] = [
  { method: "POST", path: "/", scopes: ["device:write"] },
  { method: "GET", path: "/", scopes: ["device:read"] },
  { method: "GET", path: "/:id", scopes: ["device:read"] },
  { method: "POST", path: "/:id/decommission", scopes: ["device:write"] },
  { method: "GET", path: "/:id/session", scopes: ["device:connect"], websocket: true },
  { method: "POST", path: "/:id/readings", scopes: ["device:connect"] },
  { method: "GET", path: "/:id/readings", scopes: ["device:read"] },
  { method: "GET", path: "/:id/live", scopes: ["device:read"], websocket: true },
  { method: "GET", path: "/:id/status", scopes: ["device:read"] },
  { method: "GET", path: "/:id/thresholds", scopes: ["device:read"] },
  { method: "PUT", path: "/:id/thresholds", scopes: ["device:write"] },
  { method: "GET", path: "/:id/alarms", scopes: ["device:read"] },
  { method: "GET", path: "/:id/audit", scopes: ["audit:read"] },
];
