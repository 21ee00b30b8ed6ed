import { z } from "zod";
import { envInt, EnvironmentName, parseConfig } from "../../../shared/config";
import { SCOPES } from "../../../shared/scopes";

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
  GATEWAY_HMAC_KEY: z.string().min(32),
  BOOTSTRAP_CLIENT_ID: z.string().min(1).optional(),
  BOOTSTRAP_CLIENT_SECRET: z.string().min(32).optional(),
  /** Space-separated scopes of the bootstrap client (default: every scope). */
  BOOTSTRAP_CLIENT_SCOPES: z.string().optional(),
});

export type AuthConfig = z.output<typeof Schema> & { bootstrapScopes: string[] };

const withDefaults = Schema.transform((c) => ({
  ...c,
  bootstrapScopes: c.BOOTSTRAP_CLIENT_SCOPES ? c.BOOTSTRAP_CLIENT_SCOPES.split(" ").filter(Boolean) : [...SCOPES],
}));

export function authConfig(env: Env): AuthConfig {
  return parseConfig(withDefaults, env);
}

/** Largest access token the gateway will even parse (RFC 8725 3.x: bound the work an attacker can cause). */
export const MAX_TOKEN_LENGTH = 4096;
