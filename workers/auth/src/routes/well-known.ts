import { Hono } from "hono";
import { SCOPES } from "../../../../shared/scopes";
import { SMART_SCOPES_SUPPORTED } from "../../../../shared/smart-scopes";
import { authConfig } from "../config";
import { ASSERTION_ALGS } from "../tokens/client-assertion";
import { loadKeySet } from "../tokens/keys";

const app = new Hono<{ Bindings: Env }>();

/** Public keys that verify our tokens: the signing key and, during rotation, the previous ones. */
app.get("/.well-known/jwks.json", async (c) => {
  const ks = await loadKeySet(authConfig(c.env));
  return c.json({ keys: ks.publicJwks }, 200, { "cache-control": "public, max-age=300" });
});

/**
 * How clients authenticate at the token endpoint (and at introspection and revocation): a
 * client secret (RFC 6749 2.3.1) or a JWT assertion signed with a registered key (RFC 7523
 * 2.2, SMART Backend Services), with the assertion algorithms accepted.
 */
const TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
const SIGNING_ALGS = [...ASSERTION_ALGS];
/** The platform's scopes and the SMART system scopes that map onto them (shared/smart-scopes.ts). */
const SCOPES_SUPPORTED = [...SCOPES, ...SMART_SCOPES_SUPPORTED];

/**
 * SMART App Launch 2.x discovery (https://hl7.org/fhir/smart-app-launch/conformance.html)
 * for the FHIR base `/v1/phi`, public like the OAuth metadata. The token service is this
 * worker, so it answers here rather than phi. URLs are absolute on JWT_ISSUER, as in the
 * RFC 8414 metadata, whatever host the client called: SMART Backend Services clients sign
 * their assertions with `aud` = this token_endpoint, and only the issuer's token URL is
 * accepted as an audience (client-auth.ts `assertionAudiences`; the Host header is the
 * client's to choose, so it is never one).
 */
app.get("/v1/phi/.well-known/smart-configuration", (c) => {
  const base = authConfig(c.env).JWT_ISSUER.replace(/\/$/, "");
  return c.json(
    {
      token_endpoint: `${base}/oauth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      introspection_endpoint: `${base}/oauth/introspect`,
      revocation_endpoint: `${base}/oauth/revoke`,
      grant_types_supported: ["client_credentials"],
      token_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
      token_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
      scopes_supported: SCOPES_SUPPORTED,
      response_types_supported: [],
      code_challenge_methods_supported: [],
      // Confidential clients with a shared secret or an asymmetric key; no launch, no user:
      // SMART Backend Services only. Scopes in the v2 (cruds) and v1 (read/write) syntax.
      capabilities: ["client-confidential-symmetric", "client-confidential-asymmetric", "permission-v2", "permission-v1"],
    },
    200,
    { "cache-control": "public, max-age=300" },
  );
});

/** RFC 8414 authorization server metadata. */
app.get("/.well-known/oauth-authorization-server", (c) => {
  const cfg = authConfig(c.env);
  const base = cfg.JWT_ISSUER.replace(/\/$/, "");
  return c.json(
    {
      issuer: cfg.JWT_ISSUER,
      token_endpoint: `${base}/oauth/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      introspection_endpoint: `${base}/oauth/introspect`,
      revocation_endpoint: `${base}/oauth/revoke`,
      grant_types_supported: ["client_credentials"],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
      introspection_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
      revocation_endpoint_auth_methods_supported: TOKEN_AUTH_METHODS,
      scopes_supported: SCOPES_SUPPORTED,
      // RFC 8414 2: the algorithms of private_key_jwt assertions (not those of our access tokens).
      token_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
      introspection_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
      revocation_endpoint_auth_signing_alg_values_supported: SIGNING_ALGS,
    },
    200,
    { "cache-control": "public, max-age=300" },
  );
});

export default app;
