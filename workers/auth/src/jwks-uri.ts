import type { JWK } from "jose";
import { Jwk, publicMembers } from "./client-keys";

/**
 * A private_key_jwt client's keys by reference (RFC 7591 2 `jwks_uri`, SMART Backend Services):
 * fetched when an assertion names a `kid` this isolate has not seen for the client, then kept
 * as plain data for a while. Only the URL registered by an admin is ever fetched, never one
 * from the assertion (RFC 8725 3.10); only keys with the asserted `kid` and an accepted type
 * and algorithm are used.
 */
export const JWKS_FETCH_TIMEOUT_MS = 3000;
export const JWKS_MAX_BYTES = 64 * 1024;
export const JWKS_MAX_KEYS = 20;
export const JWKS_CACHE_TTL_MS = 5 * 60 * 1000;
export const JWKS_CACHE_MAX_ENTRIES = 256;
export const JWKS_URI_MAX_LENGTH = 2048;

export type UriCheck = { ok: true; url: string } | { ok: false; message: string };

/**
 * Registration rule for `jwks_uri`: an absolute https URL without credentials or fragment;
 * plain http only to 127.0.0.1 and only where `allowLoopbackHttp` (local development and tests).
 */
export function checkJwksUri(raw: string, allowLoopbackHttp: boolean): UriCheck {
  if (raw.length > JWKS_URI_MAX_LENGTH) return { ok: false, message: `jwks_uri is longer than ${JWKS_URI_MAX_LENGTH} characters` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: "jwks_uri must be an absolute URL" };
  }
  if (url.username || url.password) return { ok: false, message: "jwks_uri must not carry credentials" };
  if (url.hash) return { ok: false, message: "jwks_uri must not have a fragment" };
  const devLoopback = allowLoopbackHttp && url.hostname === "127.0.0.1";
  if (url.protocol !== "https:" && !(url.protocol === "http:" && devLoopback)) return { ok: false, message: "jwks_uri must be an https URL" };
  if (!devLoopback && internalHost(url.hostname)) return { ok: false, message: "jwks_uri must name a public host" };
  return { ok: true, url: url.href };
}

/** Hosts that are never a client's public key endpoint: loopback, private, link-local (SSRF). */
function internalHost(host: string): boolean {
  if (host === "localhost" || host.endsWith(".localhost") || host.startsWith("[")) return true;
  const m = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(host);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || a >= 224;
}

export type JwksFailure = "jwks_unreachable" | "jwks_status" | "jwks_too_large" | "jwks_invalid";
export type FetchedKeys = { ok: true; keys: JWK[] } | { ok: false; reason: JwksFailure };

/** Reads at most `max` bytes of a body; undefined when it is longer. */
async function boundedText(res: Response, max: number): Promise<string | undefined> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > max) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.body) return "";
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(all);
}

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/**
 * The usable public signing keys of a fetched JWK Set. Keys of other types or uses (an
 * encryption key, a symmetric key) are skipped, as a provider's set may hold them; a set that
 * publishes a private member is refused whole (it is compromised, or not meant for this).
 */
export function keysFromSet(json: string): FetchedKeys {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return { ok: false, reason: "jwks_invalid" };
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(keys) || keys.length > JWKS_MAX_KEYS) return { ok: false, reason: "jwks_invalid" };
  const out: JWK[] = [];
  for (const k of keys) {
    if (typeof k !== "object" || k === null) continue;
    if (PRIVATE_MEMBERS.some((m) => m in k)) return { ok: false, reason: "jwks_invalid" };
    const src = k as Record<string, unknown>;
    // Only the members our schema knows (x5c, x5t, key_ops of a provider's set are not used).
    const known = Object.fromEntries(["kty", "kid", "use", "alg", "crv", "x", "y", "n", "e"].filter((m) => m in src).map((m) => [m, src[m]]));
    const r = Jwk.safeParse(known);
    if (r.success) out.push(publicMembers(r.data));
  }
  return { ok: true, keys: out };
}

/** One GET of the registered URL: no redirects, a timeout, a size bound. Never throws. */
export async function fetchJwks(url: string, fetcher: typeof fetch = fetch): Promise<FetchedKeys> {
  let res: Response;
  try {
    res = await fetcher(url, {
      method: "GET",
      headers: { accept: "application/jwk-set+json, application/json" },
      // A redirect would fetch a URL nobody registered.
      redirect: "manual",
      signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS),
    });
  } catch {
    return { ok: false, reason: "jwks_unreachable" };
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    return { ok: false, reason: "jwks_status" };
  }
  let text: string | undefined;
  try {
    text = await boundedText(res, JWKS_MAX_BYTES);
  } catch {
    // A timeout while reading, a reset connection, or bytes that are not UTF-8.
    return { ok: false, reason: "jwks_unreachable" };
  }
  return text === undefined ? { ok: false, reason: "jwks_too_large" } : keysFromSet(text);
}

/**
 * Per isolate, plain data only: client id + URL -> the keys last fetched and when. No promise is
 * kept: two requests that miss at once both fetch, and the later answer stays.
 */
const cache = new Map<string, { keys: JWK[]; fetchedAt: number }>();

function remember(key: string, keys: JWK[], nowMs: number): void {
  cache.delete(key);
  cache.set(key, { keys, fetchedAt: nowMs });
  // Map keeps insertion order: the first entries are the least recently fetched.
  for (const oldest of cache.keys()) {
    if (cache.size <= JWKS_CACHE_MAX_ENTRIES) break;
    cache.delete(oldest);
  }
}

export type KeyLookup = { ok: true; keys: JWK[] } | { ok: false; reason: JwksFailure | "unknown_key" };

/**
 * The client's keys with this `kid`: from the cache while it is fresh and holds the kid, else
 * fetched again (a new kid is how a client rotates). The caller counts every failure against
 * the client (the lockout bounds how often an unknown kid can make this isolate fetch).
 */
export async function keysForKid(clientId: string, url: string, kid: string, nowMs: number, fetcher: typeof fetch = fetch): Promise<KeyLookup> {
  const key = `${clientId} ${url}`;
  const hit = cache.get(key);
  const pick = (keys: JWK[]) => keys.filter((k) => k.kid === kid);
  if (hit && nowMs - hit.fetchedAt < JWKS_CACHE_TTL_MS && pick(hit.keys).length > 0) return { ok: true, keys: pick(hit.keys) };
  const fetched = await fetchJwks(url, fetcher);
  if (!fetched.ok) return fetched;
  remember(key, fetched.keys, nowMs);
  const keys = pick(fetched.keys);
  return keys.length > 0 ? { ok: true, keys } : { ok: false, reason: "unknown_key" };
}

/** For tests: forget every cached set. */
export function clearJwksCache(): void {
  cache.clear();
}
