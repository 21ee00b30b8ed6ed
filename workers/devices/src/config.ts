import { z } from "zod";
import { envInt, EnvironmentName, parseConfig } from "../../../shared/config";

const Schema = z.object({
  ENVIRONMENT: EnvironmentName,
  GATEWAY_HMAC_KEY: z.string().min(32),
  /** Silence after which a device is marked offline. */
  OFFLINE_AFTER_SECONDS: envInt(120),
  /** Bad frames tolerated per socket per window before closing it with 1008. */
  BAD_FRAME_LIMIT: envInt(20),
  BAD_FRAME_WINDOW_SECONDS: envInt(60),
});

export type DevicesConfig = z.output<typeof Schema>;

export function devicesConfig(env: object): DevicesConfig {
  return parseConfig(Schema, env);
}
