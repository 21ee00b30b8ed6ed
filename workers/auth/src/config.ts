import { z } from "zod";
import { envInt, EnvironmentName, parseConfig } from "../../../shared/config";
import { SCOPES } from "../../../shared/scopes";
import { MAX_SHARDS } from "../../../shared/tenants";
import type { ViewOptions } from "./revocation/view";

const Schema = z.object({
  ENVIRONMENT: EnvironmentName,
  JWT_ISSUER: z.string().url(),
  JWT_AUDIENCE: z.string().min(1),
  JWT_ALG: z.enum(["ES256", "HS256"]).optional().default("ES256"),
  /** JSON array of private ES256 JWKs, each with a `kid`. All verify; one signs. */
  JWT_PRIVATE_KEYS: z.string().optional(),
  /** The `kid` that signs new tokens (default: the first key). */
  JWT_SIGNING_KID: z.string().optional(),
  /** Shared secret for HS256 mode (at least 32 bytes). */
  JWT_HS256_SECRET: z.string().min(32).optional(),
  ACCESS_TOKEN_TTL_SECONDS: envInt(900),
  AUTH_MAX_FAILURES: envInt(5),
  AUTH_FAILURE_WINDOW_SECONDS: envInt(300),
  /** A revocation reaches every gateway isolate within this many ms (while D1 answers). */
  REVOCATION_REFRESH_MS: envInt(5000),
  /** A revocation view older than this many ms is not trusted: the gateway answers 503. */
  REVOCATION_MAX_STALENESS_MS: envInt(30_000),
  GATEWAY_HMAC_KEY: z.string().min(32),
  BOOTSTRAP_CLIENT_ID: z.string().min(1).optional(),
  BOOTSTRAP_CLIENT_SECRET: z.string().min(32).optional(),
  /** "true" lets a client register `jwks_uri` as plain http on 127.0.0.1 (local development and tests; never production). */
  JWKS_URI_ALLOW_HTTP_LOOPBACK: z.enum(["true", "false"]).optional().default("false"),
  /** Space-separated scopes of the bootstrap client (default: every scope). */
  BOOTSTRAP_CLIENT_SCOPES: z.string().optional(),
  /** PHI databases new tenants are spread over (shards 0 .. PHI_SHARDS-1; README "Tenants"). */
  PHI_SHARDS: envInt(4).pipe(z.number().int().min(1).max(MAX_SHARDS)),
});

export type AuthConfig = z.output<typeof Schema> & { bootstrapScopes: string[] };

const withDefaults = Schema.refine((c) => c.REVOCATION_REFRESH_MS >= 100 && c.REVOCATION_MAX_STALENESS_MS > c.REVOCATION_REFRESH_MS, {
  message: "REVOCATION_MAX_STALENESS_MS must exceed REVOCATION_REFRESH_MS (at least 100)",
  path: ["REVOCATION_MAX_STALENESS_MS"],
}).transform((c) => ({
  ...c,
  bootstrapScopes: c.BOOTSTRAP_CLIENT_SCOPES ? c.BOOTSTRAP_CLIENT_SCOPES.split(" ").filter(Boolean) : [...SCOPES],
}));

/** Whether `jwks_uri` may be http://127.0.0.1 (the flag, and never in production). */
export function allowLoopbackJwksUri(cfg: AuthConfig): boolean {
  return cfg.JWKS_URI_ALLOW_HTTP_LOOPBACK === "true" && cfg.ENVIRONMENT !== "production";
}

export function authConfig(env: Env): AuthConfig {
  return parseConfig(withDefaults, env);
}

/** Largest access token the gateway will even parse (RFC 8725 3.x: bound the work an attacker can cause). */
export const MAX_TOKEN_LENGTH = 4096;

/** The gateway's revocation view: its bounds and the token lifetime (README "Revocation bound"). */
export function viewOptions(env: Env): ViewOptions {
  const cfg = authConfig(env);
  return { refreshMs: cfg.REVOCATION_REFRESH_MS, maxStalenessMs: cfg.REVOCATION_MAX_STALENESS_MS, tokenTtlSeconds: cfg.ACCESS_TOKEN_TTL_SECONDS };
}
