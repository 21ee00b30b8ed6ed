import { counter, histogram, upDownCounter } from "../../../shared/metrics";

// The original service's metric names and labels (DESIGN.md, "Telemetry").
export const tokensValidated = counter("auth_tokens_validated_total", "Access tokens checked by the gateway");
export const securityEvents = counter("auth_security_events_total", "Security events by type and severity");
export const requestDuration = histogram("auth_request_duration_seconds", "Gateway request duration", "s");
export const activeRequests = upDownCounter("auth_active_requests", "Requests in flight in this isolate");

/** The end of a gateway request, in the app's middleware and on the proxy path: one less in flight, its duration by route. */
export function gatewayRequestDone(seconds: number, endpoint: string, method: string, status: number): void {
  activeRequests.add(-1);
  requestDuration.record(seconds, { endpoint, method, status: String(status) });
}
