// Helpers shared by the twins: the essential work only, written plainly (no framework).
import { importJWK, jwtVerify } from "jose";

const enc = new TextEncoder();
export const utf8 = (s) => enc.encode(s);

export function hex(buf) {
  let s = "";
  for (const b of new Uint8Array(buf)) s += b.toString(16).padStart(2, "0");
  return s;
}

export function unb64u(s) {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64u(bytes) {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export const sha256Hex = async (s) => hex(await crypto.subtle.digest("SHA-256", utf8(s)));

/** The same comparison as ours (shared/crypto.ts timingSafeEqualStr): hash both sides, compare without early exit. */
export async function equalStr(a, b) {
  const [x, y] = await Promise.all([crypto.subtle.digest("SHA-256", utf8(a)), crypto.subtle.digest("SHA-256", utf8(b))]);
  const u = new Uint8Array(x);
  const v = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < u.length; i++) diff |= u[i] ^ v[i];
  return diff === 0;
}

let publicKey;
/**
 * The gateway's ES256 public key (from the same JWK our auth worker signs with), imported once per isolate and
 * cached as the key, not a promise: as ours, no request awaits an import another request started.
 */
async function verifyKey(env) {
  publicKey ??= await importJWK({ ...JSON.parse(env.TWIN_PUBLIC_JWK), alg: "ES256" }, "ES256");
  return publicKey;
}

/** Verifies an access token as ours does at its core: ES256 signature, issuer, audience, time claims. */
export async function verifyToken(env, token) {
  try {
    const { payload } = await jwtVerify(token, await verifyKey(env), {
      algorithms: ["ES256"],
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      clockTolerance: 30,
      requiredClaims: ["exp", "iat", "nbf", "jti", "sub"],
    });
    return payload;
  } catch {
    return undefined;
  }
}

export function bearer(request) {
  const h = request.headers.get("authorization") ?? "";
  return h.startsWith("Bearer ") ? h.slice(7) : "";
}

/** Basic credentials -> { id, secret } (or undefined). */
export function basic(request) {
  const h = request.headers.get("authorization") ?? "";
  if (!h.startsWith("Basic ")) return undefined;
  const decoded = atob(h.slice(6));
  const i = decoded.indexOf(":");
  return i < 0 ? undefined : { id: decoded.slice(0, i), secret: decoded.slice(i + 1) };
}

/** Looks a client up in D1 and checks its secret the way ours does (SHA-256 hex of the secret, constant time). */
export async function authenticateClient(db, creds) {
  if (!creds) return undefined;
  const row = await db.prepare("SELECT id, secret_hash, roles, scopes, disabled FROM clients WHERE id = ?").bind(creds.id).first();
  const ok = await equalStr(await sha256Hex(creds.secret), row?.secret_hash ?? "0".repeat(64));
  return row && ok && !row.disabled ? row : undefined;
}

/** Revocation and client state of a verified token: the same one query as our gateway (workers/auth/src/bearer.ts). */
export async function tokenStillValid(db, claims) {
  const row = await db
    .prepare("SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = ?1) AS revoked, (SELECT disabled FROM clients WHERE id = ?2) AS disabled")
    .bind(claims.jti, claims.client_id)
    .first();
  return !row.revoked && row.disabled === 0;
}

export const json = (body, status = 200, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store", ...headers } });
