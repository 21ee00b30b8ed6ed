/**
 * Crypto helpers on WebCrypto: encodings, digests, constant-time comparison,
 * HMAC blind indexes and AES-256-GCM field encryption with key ids so keys can
 * rotate (NIST SP 800-38D: 96-bit random IV per message, 128-bit tag).
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

// The runtime's own base64 (TC39 Uint8Array base64, in workerd; Node 24 lacks it, so scripts fall back).
type NativeBase64 = {
  fromBase64?: (this: unknown, s: string, o: { alphabet: "base64url"; lastChunkHandling: "loose" }) => Uint8Array;
};
type NativeToBase64 = { toBase64?: (o: { alphabet: "base64url"; omitPadding: true }) => string };
const nativeFrom = (Uint8Array as unknown as NativeBase64).fromBase64;
const nativeTo = (Uint8Array.prototype as unknown as NativeToBase64).toBase64;
const BASE64URL_ONLY = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  if (nativeTo) return nativeTo.call(bytes, { alphabet: "base64url", omitPadding: true });
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Unpadded base64url only: padding, whitespace or the standard alphabet are refused. */
export function fromBase64Url(s: string): Uint8Array {
  if (!BASE64URL_ONLY.test(s)) throw new Error("invalid base64url");
  if (nativeFrom) return nativeFrom.call(Uint8Array, s, { alphabet: "base64url", lastChunkHandling: "loose" });
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// The runtime's own hex (the same TC39 proposal; in workerd): a quarter of the loop's CPU per SHA-256 digest.
const nativeHex = (Uint8Array.prototype as unknown as { toHex?: (this: Uint8Array) => string }).toHex;

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const u = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (nativeHex) return nativeHex.call(u);
  let s = "";
  for (const b of u) s += b.toString(16).padStart(2, "0");
  return s;
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A random token: `prefix` + base64url of `bytes` random bytes. */
export function randomToken(bytes = 32, prefix = ""): string {
  return prefix + toBase64Url(randomBytes(bytes));
}

export async function sha256Hex(data: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", enc.encode(data)));
}

/**
 * Constant-time comparison of two digests of the same kind (e.g. SHA-256 hex): no early exit on the first
 * difference. Their length is public (the digest's), so it is compared first; use `timingSafeEqualStr` for
 * strings whose length is secret.
 */
export function digestsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/**
 * Constant-time string comparison (no early exit on the first difference).
 * Both sides are hashed first so lengths leak nothing either.
 */
export async function timingSafeEqualStr(a: string, b: string): Promise<boolean> {
  const [ha, hb] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  const x = new Uint8Array(ha);
  const y = new Uint8Array(hb);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Imported keys as resolved values, never as promises: a request awaits only an
 * import it started itself, not one another request began (the runtime cancels
 * work left pending by a request that ended). Concurrent first uses each import;
 * the cache then answers synchronously.
 */
const hmacKeys = new Map<string, CryptoKey>();

async function hmacKey(secret: string): Promise<CryptoKey> {
  const hit = hmacKeys.get(secret);
  if (hit) return hit;
  const k = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  hmacKeys.set(secret, k);
  return k;
}

export async function hmacSha256(secret: string, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), enc.encode(data)));
}

export async function hmacHex(secret: string, data: string): Promise<string> {
  return toHex(await hmacSha256(secret, data));
}

export async function hmacVerify(secret: string, data: string, mac: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, enc.encode(data));
}

/** Normalization for blind indexes: exact match regardless of case and runs of whitespace. */
export function normalizeForIndex(value: string): string {
  return value.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

/**
 * Keyed blind index of a value (HMAC-SHA256 over the normalized value, with a
 * domain label so the same value in two fields gives unrelated indexes).
 */
export function blindIndex(secret: string, field: string, value: string): Promise<string> {
  return hmacHex(secret, `${field}\u0000${normalizeForIndex(value)}`);
}

export interface Keyring {
  /** Key id used for new ciphertexts. */
  currentKid: string;
  keys: Map<string, CryptoKey>;
}

/** Parsed keyrings as resolved values (plain data; see `hmacKeys` for why not promises). */
const keyrings = new Map<string, Keyring>();

/**
 * Parses a keyring secret: comma-separated `kid:base64url(32 bytes)` entries,
 * the first one encrypts, all of them decrypt. Rotation = prepend a new entry.
 */
export async function parseKeyring(secret: string): Promise<Keyring> {
  const hit = keyrings.get(secret);
  if (hit) return hit;
  const entries = secret
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new Error("keyring is empty");
  const keys = new Map<string, CryptoKey>();
  let currentKid = "";
  for (const entry of entries) {
    const [kid, material] = entry.split(":");
    if (!kid || !material || !/^[A-Za-z0-9_-]{1,32}$/.test(kid)) throw new Error("keyring entry malformed");
    const raw = fromBase64Url(material);
    if (raw.length !== 32) throw new Error("keyring keys must be 256-bit");
    keys.set(kid, await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
    if (!currentKid) currentKid = kid;
  }
  const ring = { currentKid, keys };
  keyrings.set(secret, ring);
  return ring;
}

/**
 * Encrypts a field value: `v1.<kid>.<iv>.<ciphertext+tag>` (base64url parts).
 * `aad` binds the ciphertext to its context (e.g. table and column) so it cannot
 * be moved to another field.
 */
export async function encryptField(ring: Keyring, plaintext: string, aad = ""): Promise<string> {
  const key = ring.keys.get(ring.currentKid);
  if (!key) throw new Error("current key missing");
  const iv = randomBytes(12);
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: enc.encode(aad) },
    key,
    enc.encode(plaintext),
  );
  return `v1.${ring.currentKid}.${toBase64Url(iv)}.${toBase64Url(new Uint8Array(ct))}`;
}

export async function decryptField(ring: Keyring, sealed: string, aad = ""): Promise<string> {
  const [v, kid, iv, ct] = sealed.split(".");
  if (v !== "v1" || !kid || !iv || !ct) throw new Error("ciphertext malformed");
  const key = ring.keys.get(kid);
  if (!key) throw new Error(`no key for kid ${kid}`);
  const pt = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: fromBase64Url(iv), additionalData: enc.encode(aad) },
    key,
    fromBase64Url(ct),
  );
  return dec.decode(pt);
}

/** The key id a sealed value was encrypted under (for re-encryption jobs). */
export function sealedKid(sealed: string): string | undefined {
  return sealed.split(".")[1];
}
