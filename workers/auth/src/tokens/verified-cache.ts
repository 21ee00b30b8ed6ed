import type { KeySet } from "./keys";
import { verifyAccessToken, type AccessClaims, type VerifyOptions, type VerifyResult } from "./verify";

/**
 * Per-isolate memo of access tokens whose signature and claims verified, so a client that
 * sends the same token many times pays for one ES256 verification and one claims parse.
 *
 * It only replaces `verifyAccessToken` for a token that already passed it, and the
 * caller's checks after it still run on every request (the revocation view, the
 * client's state, the tenant's cut-off, the route's scopes): a revoked token is refused
 * whether it was cached or not. Module state is plain data (frozen claims), keyed by
 * the SHA-256 of the whole token, so the bearer token itself is never kept; an entry is
 * honoured only for the same key set object (a rotation builds a new one), the same
 * issuer and audience, and while the time checks still pass at `now` (exp, nbf, iat with
 * the same skew): otherwise the token goes through the full verification again, which
 * gives the exact failure. Bounded: the oldest entry leaves when the cache is full.
 */
export const VERIFIED_CACHE_MAX = 1024;

interface Entry {
  claims: Readonly<AccessClaims>;
  keySet: KeySet;
  issuer: string;
  audience: string;
}

const entries = new Map<string, Entry>();

const utf8 = new TextEncoder();

/** The digest's 32 bytes as a 32-character string: a Map key, never printed. */
async function keyOf(token: string): Promise<string> {
  return String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", utf8.encode(token))));
}

/** The time checks of `verifyAccessToken` (jose's exp / nbf with the clock tolerance, and ours on iat). */
function stillValid(c: AccessClaims, now: number, skew: number): boolean {
  return c.exp > now - skew && c.nbf <= now + skew && c.iat <= now + skew;
}

/** `verifyAccessToken`, answered from memory for a token this isolate verified before and that is still valid at `now`. */
export async function verifyAccessTokenCached(token: string, ks: KeySet, opts: VerifyOptions): Promise<VerifyResult> {
  // Oversized or malformed input is refused by the verifier before anything is hashed or stored.
  if (token.length > opts.maxLength) return verifyAccessToken(token, ks, opts);
  const key = await keyOf(token);
  const hit = entries.get(key);
  if (hit) {
    if (hit.keySet === ks && hit.issuer === opts.issuer && hit.audience === opts.audience && stillValid(hit.claims, opts.now, opts.skew ?? 30)) {
      return { ok: true, claims: hit.claims };
    }
    entries.delete(key);
  }
  const r = await verifyAccessToken(token, ks, opts);
  if (!r.ok) return r;
  const claims = Object.freeze({ ...r.claims, roles: Object.freeze([...r.claims.roles]) }) as Readonly<AccessClaims>;
  if (entries.size >= VERIFIED_CACHE_MAX) {
    const oldest = entries.keys().next();
    if (!oldest.done) entries.delete(oldest.value);
  }
  entries.set(key, { claims, keySet: ks, issuer: opts.issuer, audience: opts.audience });
  return { ok: true, claims };
}

/** How many verified tokens this isolate holds (tests: the cache is bounded and used). */
export function verifiedCacheSize(): number {
  return entries.size;
}
