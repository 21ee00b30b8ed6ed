import type { AuthEnv } from "./types";
import type { Context } from "hono";
import { ApiError } from "../../../shared/errors";
import { hasAllScopes, parseScopeString } from "../../../shared/scopes";
import { withPlatformScopes } from "../../../shared/smart-scopes";
import { authConfig, MAX_TOKEN_LENGTH, viewOptions, type AuthConfig } from "./config";
import { loadKeySet } from "./tokens/keys";
import { verifyAccessTokenCached } from "./tokens/verified-cache";
import type { AccessClaims, TokenFailure } from "./tokens/verify";
import { securityEvents, tokensValidated } from "./metrics";
import { checkRevocation } from "./revocation/view";
import { recordSecurityEvent, severityOf, type SecurityEventType } from "./security-events";
import { routeTemplate } from "../../../shared/http";

export const REALM = "health-platform";

export function clientIp(c: Context): string {
  return clientIpOf(c.req.raw.headers);
}

/** The client's address as Cloudflare's edge reports it. */
export function clientIpOf(headers: Headers): string {
  return headers.get("cf-connecting-ip") ?? "unknown";
}

const EVENT_FOR: Record<TokenFailure | "revoked" | "client_disabled", SecurityEventType> = {
  oversized: "token_malformed",
  malformed: "token_malformed",
  unsupported_header: "token_malformed",
  wrong_algorithm: "token_invalid_signature",
  wrong_type: "token_malformed",
  unknown_key: "token_invalid_signature",
  bad_signature: "token_invalid_signature",
  expired: "token_expired",
  not_yet_valid: "token_invalid_claims",
  issued_in_future: "token_invalid_claims",
  wrong_issuer: "token_invalid_claims",
  wrong_audience: "token_invalid_claims",
  invalid_claims: "token_invalid_claims",
  revoked: "token_revoked",
  client_disabled: "token_client_disabled",
};

export function securityEvent(
  c: Context<AuthEnv>,
  type: SecurityEventType,
  fields: { clientId?: string | null; reason?: string | null } = {},
): void {
  securityEventOf(requestFacts(c), type, fields);
}

export function requestFacts(c: Context<AuthEnv>): RequestFacts {
  return { env: c.env, executionCtx: c.executionCtx, headers: c.req.raw.headers, requestId: c.get("requestId"), route: routeTemplate(c) };
}

/** What a security event (and client authentication, src/client-auth.ts) needs of a request, with or without the app. */
export interface RequestFacts {
  env: Env;
  executionCtx: { waitUntil(promise: Promise<unknown>): void };
  headers: Headers;
  requestId: string | undefined;
  /** The route template. */
  route: string;
}

export function securityEventOf(r: RequestFacts, type: SecurityEventType, fields: { clientId?: string | null; reason?: string | null } = {}): void {
  securityEvents.add(1, { event_type: type, severity: severityOf(type) });
  recordSecurityEvent(r.env.DB, r.executionCtx, {
    type,
    clientId: fields.clientId,
    reason: fields.reason,
    ip: clientIpOf(r.headers),
    requestId: r.requestId,
    route: r.route,
  });
}

/** RFC 6750 3.1: the same generic answer whatever check failed. */
export function invalidToken(): ApiError {
  return new ApiError(401, "invalid_token", "The access token is missing, invalid, expired or revoked.", {
    headers: { "www-authenticate": `Bearer realm="${REALM}", error="invalid_token"` },
  });
}

/** Extracts the bearer token (RFC 6750 2.1); undefined when absent. */
export function bearerToken(c: Context): string | undefined {
  return bearerOf(c.req.header("authorization"));
}

/** The token of an `Authorization: Bearer` header value; undefined when absent, "" when not a bearer token. */
export function bearerOf(h: string | null | undefined): string | undefined {
  if (!h) return undefined;
  const m = /^Bearer[ ]+([^ ]+)[ ]*$/i.exec(h);
  return m?.[1] ?? "";
}

/**
 * Signature and claims only (no storage): RFC 9068 section 4, RFC 8725. A token this isolate
 * verified before is answered from its memo (tokens/verified-cache.ts); revocation and the
 * client's state are checked after this on every request, cached or not.
 */
async function verifySigned(env: Env, token: string, now: number) {
  const cfg = authConfig(env);
  return verifyAccessTokenCached(token, await loadKeySet(cfg), {
    issuer: cfg.JWT_ISSUER,
    audience: cfg.JWT_AUDIENCE,
    now,
    maxLength: MAX_TOKEN_LENGTH,
  });
}

/**
 * A token's client against the configured bootstrap client (which lives in configuration, not
 * D1): "active" while both BOOTSTRAP_CLIENT_ID and BOOTSTRAP_CLIENT_SECRET are set; "retired"
 * when the id is still set but the secret removed, which is how the bootstrap client is
 * disabled, so its tokens are refused like a disabled client's, at once, by introspection and
 * the gateway alike (no storage read); undefined for any other client id.
 */
export function bootstrapStatus(cfg: AuthConfig, clientId: string): "active" | "retired" | undefined {
  if (cfg.BOOTSTRAP_CLIENT_ID === undefined || clientId !== cfg.BOOTSTRAP_CLIENT_ID) return undefined;
  return cfg.BOOTSTRAP_CLIENT_SECRET ? "active" : "retired";
}

/**
 * Verifies a token authoritatively, for introspection (RFC 7662): signature and
 * claims, then revocation and the client's state read from D1 (one query).
 * The gateway does not use this: see `requireBearer`. Returns a reason instead of throwing.
 */
export async function checkToken(
  env: Env,
  token: string,
  now: number,
): Promise<{ ok: true; claims: AccessClaims } | { ok: false; reason: TokenFailure | "revoked" | "client_disabled" }> {
  const cfg = authConfig(env);
  const r = await verifySigned(env, token, now);
  if (!r.ok) return r;
  const boot = bootstrapStatus(cfg, r.claims.client_id);
  if (boot === "retired") return { ok: false, reason: "client_disabled" };
  const isBootstrap = boot === "active";
  const row = await env.DB.prepare(
    `SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = ?1) AS revoked, (SELECT disabled FROM clients WHERE id = ?2) AS disabled,
     (SELECT tokens_not_before FROM tenants WHERE id = ?3) AS cutoff`,
  )
    .bind(r.claims.jti, r.claims.client_id, r.claims.tenant_id ?? null)
    .first<{ revoked: number; disabled: number | null; cutoff: number | null }>();
  if (row?.revoked) return { ok: false, reason: "revoked" };
  // The tenant's tokens issued before its cut-off (a shard move, an offboarding) are revoked.
  if (row?.cutoff !== null && row?.cutoff !== undefined && r.claims.iat < row.cutoff) return { ok: false, reason: "revoked" };
  // A deleted or disabled client's tokens are inactive at once, not at expiry.
  if (!isBootstrap && (row?.disabled === null || row?.disabled === undefined || row.disabled)) {
    return { ok: false, reason: "client_disabled" };
  }
  return r;
}

/**
 * The gateway's check: signature and claims, then this isolate's revocation view
 * (no D1 round trip while the view is fresh). Fails closed when the view cannot be
 * trusted. `nowMs` is milliseconds since the epoch.
 */
export async function checkGatewayToken(
  env: Env,
  ctx: { waitUntil(p: Promise<unknown>): void },
  token: string,
  nowMs: number,
): Promise<{ ok: true; claims: AccessClaims } | { ok: false; reason: TokenFailure | "revoked" | "client_disabled" | "unavailable" }> {
  const cfg = authConfig(env);
  const r = await verifySigned(env, token, Math.floor(nowMs / 1000));
  if (!r.ok) return r;
  const boot = bootstrapStatus(cfg, r.claims.client_id);
  // The bootstrap client's secret was removed: refused like a disabled client, from configuration alone.
  if (boot === "retired") return { ok: false, reason: "client_disabled" };
  const v = await checkRevocation(env.DB, ctx, viewOptions(env), { jti: r.claims.jti, clientId: r.claims.client_id, isBootstrap: boot === "active", tenantId: r.claims.tenant_id, iat: r.claims.iat }, nowMs);
  return v.ok ? r : v;
}

/** 503 when the gateway cannot confirm that a token is not revoked: it fails closed. */
export function revocationUnavailable(env: Env): ApiError {
  const retry = Math.max(1, Math.ceil(authConfig(env).REVOCATION_REFRESH_MS / 1000));
  return new ApiError(503, "revocation_state_unavailable", "Token revocation state cannot be confirmed right now; retry later.", {
    headers: { "retry-after": String(retry) },
  });
}

/** Authenticates the request's bearer token and checks `scopes`; throws 401 / 403. */
export async function requireBearer(c: Context<AuthEnv>, scopes: readonly string[]): Promise<AccessClaims> {
  return requireScopes(c, await authenticateBearer(c, scopes), scopes);
}

/**
 * The token check alone (401); `scopes` only label the metric. For routes whose scopes
 * depend on the body: authenticate first, read the body, then `requireScopes`.
 */
export async function authenticateBearer(c: Context<AuthEnv>, scopes: readonly string[]): Promise<AccessClaims> {
  const token = bearerToken(c);
  if (token === undefined) {
    securityEvent(c, "token_missing");
    tokensValidated.add(1, { result: "missing", scope: scopes.join(" ") });
    throw new ApiError(401, "unauthenticated", "An access token is required.", {
      headers: { "www-authenticate": `Bearer realm="${REALM}"` },
    });
  }
  const r = await checkGatewayToken(c.env, c.executionCtx, token, Date.now());
  if (!r.ok) {
    if (r.reason === "unavailable") {
      tokensValidated.add(1, { result: "unavailable", scope: scopes.join(" ") });
      throw revocationUnavailable(c.env);
    }
    securityEvent(c, EVENT_FOR[r.reason], { reason: r.reason });
    tokensValidated.add(1, { result: "invalid", scope: scopes.join(" ") });
    throw invalidToken();
  }
  return r.claims;
}

/** Whether a token's scopes cover `scopes`. SMART scopes stand for the platform scopes they need; the owning worker checks type and interaction. */
export function grants(claims: AccessClaims, scopes: readonly string[]): boolean {
  return hasAllScopes(withPlatformScopes(parseScopeString(claims.scope)), scopes);
}

/** The scope check of an authenticated token (403 with the scopes needed, RFC 6750 3.1). */
export function requireScopes(c: Context<AuthEnv>, claims: AccessClaims, scopes: readonly string[]): AccessClaims {
  if (!grants(claims, scopes)) {
    securityEvent(c, "scope_denied", { clientId: claims.client_id, reason: `needs ${scopes.join(" ")}` });
    tokensValidated.add(1, { result: "insufficient_scope", scope: scopes.join(" ") });
    throw new ApiError(403, "insufficient_scope", `This operation needs the scope ${scopes.join(" ")}.`, {
      headers: {
        "www-authenticate": `Bearer realm="${REALM}", error="insufficient_scope", scope="${scopes.join(" ")}"`,
      },
    });
  }
  tokensValidated.add(1, { result: "valid", scope: scopes.join(" ") });
  return claims;
}
