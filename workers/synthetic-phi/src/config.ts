import { z } from "zod";
import { envBool, envInt, EnvironmentName, parseConfig } from "../../../shared/config";

const Schema = z.object({
  ENVIRONMENT: EnvironmentName,
  GATEWAY_HMAC_KEY: z.string().min(32),
  /** Loading into phi is opt-in per environment (false in production's config, and refused there anyway). */
  ALLOW_LOAD: envBool(false),
  /** Patients written to phi concurrently per batch. */
  LOAD_BATCH_SIZE: envInt(20).pipe(z.number().int().min(1).max(50)),
});

export type SyntheticConfig = z.output<typeof Schema>;

export function syntheticConfig(env: Env): SyntheticConfig {
  return parseConfig(Schema, env);
}

/**
 * Output limits, named in every 400 that enforces them. A bundle is built in
 * memory, so it stays small; NDJSON streams, so it can go much further. Load
 * makes one phi subrequest per patient: its limit keeps one call under the
 * Workers subrequest limit (1,000 on the paid plan).
 */
export const LIMITS = {
  bundle: 1_000,
  ndjson: 100_000,
  load: 500,
  /** offset + count: patient indexes stay small, exact integers. */
  index: 1_000_000_000,
} as const;
