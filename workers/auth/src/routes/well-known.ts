import { Hono } from "hono";
import { SCOPES } from "../../../../shared/scopes";
import { authConfig } from "../config";
import { loadKeySet } from "../tokens/keys";

const app = new Hono<{ Bindings: Env }>();

/** Public keys that verify our tokens: the signing key and, during rotation, the previous ones. */
app.get("/.well-known/jwks.json", async (c) => {
  const ks = await loadKeySet(authConfig(c.env));
  return c.json({ keys: ks.publicJwks }, 200, { "cache-control": "public, max-age=300" });
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
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      scopes_supported: [...SCOPES],
      token_endpoint_auth_signing_alg_values_supported: [cfg.JWT_ALG],
    },
    200,
    { "cache-control": "public, max-age=300" },
  );
});

export default app;
