/**
 * Redaction for telemetry: URLs and paths keep only the static words of our
 * routes; identifiers become `{id}` and query values `REDACTED`, so no PHI,
 * card data, token or record id reaches a span attribute or metric label.
 */
const STATIC_SEGMENTS = new Set([
  "v1", "phi", "Patient", "Observation", "_search", "_history", "$access-log", "audit", "verify", "metadata",
  "payments", "payment-methods", "capture", "void", "refunds", "approve", "ledger", "balance", "daily",
  "synthetic", "patients", "load", "devices", "decommission", "session", "readings", "live", "status",
  "thresholds", "alarms", "oauth", "token", "introspect", "revoke", "admin", "clients", "keys",
  "security-events", ".well-known", "jwks.json", "oauth-authorization-server", "health", "readiness",
  "openapi.json", "docs", "smart-configuration",
]);

export function redactPath(path: string): string {
  return path
    .split("/")
    .map((seg) => (seg === "" || STATIC_SEGMENTS.has(seg) ? seg : "{id}"))
    .join("/");
}

export function redactQuery(search: string): string {
  const q = search.startsWith("?") ? search.slice(1) : search;
  if (!q) return "";
  const names: string[] = [];
  for (const part of q.split("&")) {
    const name = part.split("=")[0] ?? "";
    names.push(/^[A-Za-z_:.-]{1,40}$/.test(name) ? `${name}=REDACTED` : "REDACTED");
  }
  return "?" + names.join("&");
}

/** scheme://host/path?query of an already normalized URL (what the tracing library records). */
const PLAIN_URL = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#@\\]+)(\/[^?#\\]*)?(\?[^#]*)?(?:#.*)?$/i;

export function redactUrl(raw: string): string {
  // The common case without the cost of a URL parse; anything unusual (credentials, backslashes, no path) is parsed.
  const m = PLAIN_URL.exec(raw);
  if (m?.[3]) return `${(m[1] ?? "").toLowerCase()}//${m[2] ?? ""}${redactPath(m[3])}${redactQuery(m[4] ?? "")}`;
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${redactPath(u.pathname)}${redactQuery(u.search)}`;
  } catch {
    return raw.startsWith("/") ? redactPath(raw.split("?")[0] ?? "") : "REDACTED";
  }
}

const URL_KEYS = new Set(["url.full", "http.url", "http.target", "url.path", "url.query", "http.request.header.referer"]);
const SENSITIVE_KEY = /authorization|cookie|token|secret|password|principal|card|cvc|set-cookie/i;

/** Redacts one attribute value by its key; undefined means drop it. */
export function redactAttribute(key: string, value: unknown): unknown {
  if (SENSITIVE_KEY.test(key)) return undefined;
  if (typeof value !== "string") return value;
  if (key === "url.query") return redactQuery(value);
  if (key === "url.path" || key === "http.target") return redactPath(value.split("?")[0] ?? "") + redactQuery(value.includes("?") ? value.slice(value.indexOf("?")) : "");
  if (URL_KEYS.has(key)) return redactUrl(value);
  return value;
}
