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
  /**
   * Routes whose needed scopes depend on the body (a FHIR batch/transaction Bundle: each entry
   * its own): the gateway reads the body (within the body limit), requires every scope this
   * returns, and forwards the same bytes. `scopes` is then what a body naming no entry needs.
   */
  scopesFromBody?: (body: unknown) => readonly string[];
  /** WebSocket upgrade routes (devices sessions and live feeds). */
  websocket?: boolean;
}
