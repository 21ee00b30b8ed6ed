import { exportJWK, importJWK, type CryptoKey as JoseKey, type JWK } from "jose";
import type { AuthConfig } from "../config";

export type Alg = "ES256" | "HS256";

export interface KeySet {
  alg: Alg;
  signingKid: string;
  /** Keys that verify, by kid. Only keys we configured: never one named by the token. */
  verify: Map<string, JoseKey | Uint8Array>;
  sign: JoseKey | Uint8Array;
  /** Public JWKs for /.well-known/jwks.json (empty in HS256 mode). */
  publicJwks: JWK[];
}

/**
 * Imported key sets by configuration, as resolved values: a request never awaits
 * an import another request started (the runtime may cancel that request's work).
 */
const cache = new Map<string, KeySet>();

/**
 * Loads the configured keys once per isolate. Until a key set is cached, each
 * request imports its own copy (the first to finish fills the cache; a few
 * concurrent duplicate imports at cold start cost less than a shared promise
 * another request could leave unresolved). Rotation without downtime: add the
 * new key to JWT_PRIVATE_KEYS, point JWT_SIGNING_KID at it, and remove the old
 * one after the longest token lifetime has passed.
 */
export async function loadKeySet(cfg: AuthConfig): Promise<KeySet> {
  const cacheKey = [cfg.JWT_ALG, cfg.JWT_SIGNING_KID ?? "", cfg.JWT_PRIVATE_KEYS ?? "", cfg.JWT_HS256_SECRET ?? ""].join(
    "\u0000",
  );
  const hit = cache.get(cacheKey);
  if (hit) return hit;
  const ks = await build(cfg);
  cache.set(cacheKey, ks);
  return ks;
}

async function build(cfg: AuthConfig): Promise<KeySet> {
  if (cfg.JWT_ALG === "HS256") {
    if (!cfg.JWT_HS256_SECRET) throw new Error("JWT_HS256_SECRET is required when JWT_ALG is HS256");
    const secret = new TextEncoder().encode(cfg.JWT_HS256_SECRET);
    const kid = cfg.JWT_SIGNING_KID ?? "hs256";
    return { alg: "HS256", signingKid: kid, verify: new Map([[kid, secret]]), sign: secret, publicJwks: [] };
  }
  if (!cfg.JWT_PRIVATE_KEYS) throw new Error("JWT_PRIVATE_KEYS is required for ES256");
  const parsed: unknown = JSON.parse(cfg.JWT_PRIVATE_KEYS);
  if (!Array.isArray(parsed) || parsed.length === 0) throw new Error("JWT_PRIVATE_KEYS must be a non-empty array");
  const verify = new Map<string, JoseKey | Uint8Array>();
  const publicJwks: JWK[] = [];
  let sign: JoseKey | undefined;
  const signingKid = cfg.JWT_SIGNING_KID ?? (parsed[0] as JWK).kid;
  for (const raw of parsed as JWK[]) {
    if (raw.kty !== "EC" || raw.crv !== "P-256" || !raw.kid || !raw.d) throw new Error("each key must be a private P-256 JWK with kid");
    const priv = (await importJWK({ ...raw, alg: "ES256" }, "ES256", { extractable: true })) as JoseKey;
    const { d: _d, ...pubJwk } = raw;
    const pub = (await importJWK({ ...pubJwk, alg: "ES256" }, "ES256")) as JoseKey;
    verify.set(raw.kid, pub);
    const exported = await exportJWK(pub);
    publicJwks.push({ kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y, kid: raw.kid, alg: "ES256", use: "sig" });
    if (raw.kid === signingKid) sign = priv;
  }
  if (!sign || !signingKid) throw new Error("JWT_SIGNING_KID names no configured key");
  return { alg: "ES256", signingKid, verify, sign, publicJwks };
}
