export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * One row of the gateway's route table: an internal route (path relative to
 * the service prefix, Hono syntax) and every scope it needs.
 */
export interface RouteScope {
  method: Method;
  path: string;
  scopes: readonly string[];
  /** WebSocket upgrade routes (devices sessions and live feeds). */
  websocket?: boolean;
}
