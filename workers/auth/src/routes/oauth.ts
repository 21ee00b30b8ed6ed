import { Hono } from "hono";
import { ApiError } from "../../../../shared/errors";
import type { AppVariables } from "../../../../shared/http";
import { allowedScopes, hasAllScopes } from "../../../../shared/scopes";
import { bearerToken, checkToken, REALM, requestFacts } from "../bearer";
import { authenticateClient, oauthError, readOAuthParams } from "../client-auth";
import type { Client } from "../clients";
import { authConfig, MAX_TOKEN_LENGTH } from "../config";
import { noteRevoked, pruneRevokedStatement } from "../revocation/view";
import { issueToken } from "../token-first";
import { loadKeySet } from "../tokens/keys";
import { verifyAccessToken, type AccessClaims } from "../tokens/verify";

const app = new Hono<{ Bindings: Env; Variables: AppVariables }>();

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

/** RFC 6749 4.4: client credentials grant. `POST /token` is the original service's path (also served without the app: src/token-first.ts). */
app.on("POST", ["/oauth/token", "/token"], (c) => issueToken(requestFacts(c), c.req.raw));

function introspection(claims: AccessClaims) {
  return {
    active: true,
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    token_type: "Bearer",
    exp: claims.exp,
    iat: claims.iat,
    nbf: claims.nbf,
    iss: claims.iss,
    aud: claims.aud,
    jti: claims.jti,
    roles: claims.roles,
    ...(claims.device_id ? { device_id: claims.device_id } : {}),
    ...(claims.tenant_id ? { tenant_id: claims.tenant_id } : {}),
  };
}

/** A tenant's client learns nothing of another tenant's tokens; a platform client may ask about any. */
function sameTenant(caller: Client, claims: AccessClaims): boolean {
  return caller.tenant === null || caller.tenant.id === claims.tenant_id;
}

/**
 * RFC 7662: the caller authenticates as a client; anything not valid is `{active:false}`.
 * Authoritative: it reads revocation and client state from D1, not the gateway's view.
 */
app.post("/oauth/introspect", async (c) => {
  const params = await readOAuthParams(c.req.raw);
  const caller = await authenticateClient(requestFacts(c), params);
  const t = params.get("token");
  if (!t) throw oauthError(400, "invalid_request", "token is required.");
  const r = await checkToken(c.env, t, Math.floor(Date.now() / 1000));
  return c.json(r.ok && sameTenant(caller, r.claims) ? introspection(r.claims) : { active: false }, 200, NO_STORE);
});

/** The original service's endpoint: introspects the bearer token the request carries. */
app.get("/introspect", async (c) => {
  const t = bearerToken(c);
  if (t === undefined) {
    throw new ApiError(401, "unauthenticated", "An access token is required.", {
      headers: { "www-authenticate": `Bearer realm="${REALM}"` },
    });
  }
  const r = await checkToken(c.env, t, Math.floor(Date.now() / 1000));
  return c.json(r.ok ? introspection(r.claims) : { active: false }, 200, NO_STORE);
});

/**
 * RFC 7009: a client revokes its own tokens (an `admin` client any token).
 * Invalid or unknown tokens also answer 200, as section 2.2 requires.
 */
app.post("/oauth/revoke", async (c) => {
  const params = await readOAuthParams(c.req.raw);
  const caller = await authenticateClient(requestFacts(c), params);
  const t = params.get("token");
  if (!t) throw oauthError(400, "invalid_request", "token is required.");
  const cfg = authConfig(c.env);
  const now = Math.floor(Date.now() / 1000);
  const r = await verifyAccessToken(t, await loadKeySet(cfg), {
    issuer: cfg.JWT_ISSUER,
    audience: cfg.JWT_AUDIENCE,
    now,
    maxLength: MAX_TOKEN_LENGTH,
  });
  const isAdmin = hasAllScopes(allowedScopes(caller.roles, caller.scopes), ["admin"]);
  // An admin revokes any token of its own tenant (a platform admin: any token at all).
  if (r.ok && (r.claims.client_id === caller.id || (isAdmin && sameTenant(caller, r.claims)))) {
    const db = c.env.DB;
    // One batch (one transaction): the revocation, then revocations of long-expired tokens pruned (bounded).
    await db.batch([
      db
        .prepare("INSERT OR IGNORE INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
        .bind(r.claims.jti, r.claims.client_id, r.claims.exp, new Date().toISOString(), caller.id),
      pruneRevokedStatement(db, now),
    ]);
    // Refused in this isolate at once; every other gateway isolate within the revocation bound.
    noteRevoked(r.claims.jti, r.claims.exp);
  }
  return c.body(null, 200, NO_STORE);
});

export default app;
