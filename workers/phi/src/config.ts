import { z } from "zod";
import { EnvironmentName, envInt, parseConfig } from "../../../shared/config";
import { parseKeyring, type Keyring } from "../../../shared/crypto";

const PhiConfig = z.object({
  ENVIRONMENT: EnvironmentName,
  /** `kid:base64url(32 bytes)`, comma-separated; the first encrypts, all decrypt (rotation). */
  PHI_ENCRYPTION_KEYS: z.string().min(1),
  /** Blind-index HMAC key: separate from the encryption keys, and stable (changing it needs a re-index). */
  PHI_INDEX_KEY: z.string().min(32),
  PHI_PAGE_MAX: envInt(100),
});

export interface PhiKeys {
  ring: Keyring;
  indexKey: string;
}

export interface PhiSettings extends PhiKeys {
  pageMax: number;
}

export async function phiSettings(env: Env): Promise<PhiSettings> {
  const cfg = parseConfig(PhiConfig, env);
  return { ring: await parseKeyring(cfg.PHI_ENCRYPTION_KEYS), indexKey: cfg.PHI_INDEX_KEY, pageMax: cfg.PHI_PAGE_MAX };
}
