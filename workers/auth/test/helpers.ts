import { env, SELF } from "cloudflare:test";
import { importJWK, SignJWT, type JWK } from "jose";

export const BASE = "https://gw.test";
export const ISSUER = "http://127.0.0.1:8787";
export const AUDIENCE = "health-platform";

/** A distinct client address per test, so failure counters never cross tests. */
export function randomIp(): string {
  const b = crypto.getRandomValues(new Uint8Array(3));
  return `10.${b[0] ?? 0}.${b[1] ?? 0}.${b[2] ?? 0}`;
}

export function gw(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(BASE + path, init);
}

export function basic(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s);
  return "Basic " + btoa(`${enc(id)}:${enc(secret)}`);
}

export function form(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

export const FORM = { "content-type": "application/x-www-form-urlencoded" };

export function bootstrapAuth(): string {
  return basic(env.BOOTSTRAP_CLIENT_ID, env.BOOTSTRAP_CLIENT_SECRET);
}

export async function tokenRequest(
  params: Record<string, string>,
  headers: Record<string, string> = { authorization: bootstrapAuth() },
): Promise<Response> {
  return gw("/oauth/token", { method: "POST", headers: { ...FORM, "cf-connecting-ip": randomIp(), ...headers }, body: form(params) });
}

/** A bootstrap-admin token with exactly `scope`. */
export async function token(scope: string): Promise<string> {
  const res = await tokenRequest({ grant_type: "client_credentials", scope });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json<{ access_token: string }>()).access_token;
}

export interface CreatedClient {
  client_id: string;
  client_secret: string;
  roles: string[];
  scopes: string[];
  allowed_scopes: string[];
  disabled: boolean;
}

export async function createClient(body: { name: string; roles?: string[]; scopes?: string[] }): Promise<CreatedClient> {
  const res = await gw("/admin/clients", {
    method: "POST",
    headers: { authorization: `Bearer ${await token("admin")}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`create client: ${res.status} ${await res.text()}`);
  return res.json<CreatedClient>();
}

export async function clientToken(c: { client_id: string; client_secret: string }, scope?: string): Promise<string> {
  const res = await tokenRequest({ grant_type: "client_credentials", ...(scope ? { scope } : {}) }, { authorization: basic(c.client_id, c.client_secret) });
  if (res.status !== 200) throw new Error(`client token: ${res.status} ${await res.text()}`);
  return (await res.json<{ access_token: string }>()).access_token;
}

export function now(): number {
  return Math.floor(Date.now() / 1000);
}

/** Valid claims for the bootstrap client, to be altered by attack cases. */
export function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  return {
    iss: ISSUER,
    sub: env.BOOTSTRAP_CLIENT_ID,
    aud: AUDIENCE,
    client_id: env.BOOTSTRAP_CLIENT_ID,
    exp: t + 600,
    iat: t,
    nbf: t,
    jti: crypto.randomUUID(),
    scope: "phi:read admin",
    roles: ["admin"],
    ...over,
  };
}

export async function signWith(
  jwkJson: string,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const jwk = JSON.parse(jwkJson) as JWK;
  const key = await importJWK(jwk, "ES256");
  return new SignJWT(payload).setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: jwk.kid, ...header }).sign(key);
}

export function b64url(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A compact JWS assembled by hand (for cases no library would produce). */
export function rawJwt(header: unknown, payload: unknown, signature = ""): string {
  const enc = (v: unknown) => b64url(typeof v === "string" ? v : JSON.stringify(v));
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

export async function hs256(secret: string | Uint8Array, header: Record<string, unknown>, payload: unknown): Promise<string> {
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(payload));
  let raw = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  // WebCrypto refuses an empty HMAC key; HMAC pads keys with zeros to the block size, so this is the same MAC.
  if (raw.length === 0) raw = new Uint8Array(64);
  const key = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${h}.${p}`)));
  return `${h}.${p}.${b64url(sig)}`;
}

/** Calls a gateway route that needs phi:read with `tok` as the bearer token. */
export function withBearer(tok: string, path = "/v1/phi/Patient/abc"): Promise<Response> {
  return gw(path, { headers: { authorization: `Bearer ${tok}` } });
}

/** ES256 over any header, signed with WebCrypto directly (jose refuses headers such as unknown `crit`). */
export async function signRaw(jwkJson: string, header: Record<string, unknown>, payload: unknown): Promise<string> {
  const jwk = JSON.parse(jwkJson) as JsonWebKey;
  const key = await crypto.subtle.importKey("jwk", { ...jwk, key_ops: ["sign"] }, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const input = `${b64url(JSON.stringify(header))}.${b64url(typeof payload === "string" ? payload : JSON.stringify(payload))}`;
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, new TextEncoder().encode(input)));
  return `${input}.${b64url(sig)}`;
}
