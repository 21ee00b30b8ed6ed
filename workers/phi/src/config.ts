import type { Context } from "hono";
import { z } from "zod";
import { EnvironmentName, envInt, parseConfig } from "../../../shared/config";
import { parseKeyring, type Keyring } from "../../../shared/crypto";
import { tenantRing } from "../../../shared/keys/tenant-keys";
import type { PhiEnv } from "./env";
import { scopeOf, type SqlDb } from "./store/scope";
import { shardBinding } from "./store/shards";

const PhiConfig = z.object({
  ENVIRONMENT: EnvironmentName,
  /** `kid:base64url(32 bytes)`, comma-separated; the first encrypts, all decrypt (rotation). Wraps the tenants' data keys. */
  PHI_ENCRYPTION_KEYS: z.string().min(1),
  /** Blind-index HMAC key: separate from the encryption keys, and stable (changing it needs a re-index). */
  PHI_INDEX_KEY: z.string().min(32),
  PHI_PAGE_MAX: envInt(100),
});

export interface PhiKeys {
  /** The platform keyring: seals search cursors and wraps the tenants' data keys. */
  ring: Keyring;
  indexKey: string;
}

export interface PlatformSettings extends PhiKeys {
  pageMax: number;
}

export interface PhiSettings extends PlatformSettings {
  /** The tenant's keyring on its shard (shared/keys/tenant-keys.ts): seals and unseals resource bodies. */
  bodies: Keyring;
}

export async function platformSettings(env: Env): Promise<PlatformSettings> {
  const cfg = parseConfig(PhiConfig, env);
  return { ring: await parseKeyring(cfg.PHI_ENCRYPTION_KEYS), indexKey: cfg.PHI_INDEX_KEY, pageMax: cfg.PHI_PAGE_MAX };
}

/** Settings of the tenant's data on `shard` (the export job, outside a request). */
export async function tenantSettings(env: Env, db: SqlDb, shard: number, tenant: string): Promise<PhiSettings> {
  const base = await platformSettings(env);
  return { ...base, bodies: await tenantRing({ db, service: "phi", database: shardBinding(shard), platform: base.ring, tenant }) };
}

/** Settings of the request's tenant, on its shard, in its D1 session. */
export function phiSettings(c: Context<PhiEnv>): Promise<PhiSettings> {
  return tenantSettings(c.env, scopeOf(c).db, c.get("principal").shard, c.get("principal").tenantId);
}
