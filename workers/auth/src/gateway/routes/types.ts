export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * One row of the gateway's route table: an internal route (path relative to
 * the service prefix, Hono syntax) and every scope it needs.
 */
export interface RouteScope {
  method: Method;
  path: string;
  scopes: readonly string[];
  /**
   * Discovery documents clients read before they hold a token (FHIR `metadata`): forwarded
   * without a bearer check and without a principal. `scopes` must then be empty.
   */
  public?: true;
  /** WebSocket upgrade routes (devices sessions and live feeds). */
  websocket?: boolean;
}
