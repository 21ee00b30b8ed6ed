import { env } from "cloudflare:test";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey as JoseKey, type JWK } from "jose";
import { expect } from "vitest";
import { JWT_BEARER } from "../src/tokens/client-assertion";
import { FORM, form, gw, ISSUER, now, randomIp, token } from "./helpers";

export const TOKEN_URL = `${ISSUER}/oauth/token`;

export interface TestKey {
  alg: "ES256" | "ES384" | "RS256" | "RS384";
  kid: string;
  privateKey: JoseKey;
  /** The public JWK as registered (with its kid). */
  publicJwk: JWK;
}

/** A fresh key pair made with WebCrypto through jose, in this test. */
export async function testKey(alg: TestKey["alg"], kid = `k-${crypto.randomUUID()}`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg.startsWith("RS") ? { modulusLength: 2048 } : {}) });
  const jwk = await exportJWK(publicKey);
  return { alg, kid, privateKey, publicJwk: { ...jwk, kid } };
}

export async function registerClient(body: Record<string, unknown>): Promise<Response> {
  return gw("/admin/clients", {
    method: "POST",
    headers: { authorization: `Bearer ${await token("admin")}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** A private_key_jwt client with these public keys; resolves to its id. */
export async function jwtClient(keys: TestKey[], roles: string[] = ["clinician"]): Promise<string> {
  const res = await registerClient({ name: "backend service", roles, token_endpoint_auth_method: "private_key_jwt", jwks: { keys: keys.map((k) => k.publicJwk) } });
  if (res.status !== 201) throw new Error(`register: ${res.status} ${await res.text()}`);
  const body = await res.json<{ client_id: string; client_secret?: string }>();
  expect(body.client_secret).toBeUndefined();
  return body.client_id;
}

/** A valid assertion for `clientId` (SMART Backend Services shape), to be altered by a case. */
export function assertion(
  clientId: string,
  key: TestKey,
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
): Promise<string> {
  const t = now();
  return new SignJWT({ iss: clientId, sub: clientId, aud: TOKEN_URL, exp: t + 240, iat: t, jti: crypto.randomUUID(), ...claims })
    .setProtectedHeader({ alg: key.alg, typ: "JWT", kid: key.kid, ...header })
    .sign(key.privateKey);
}

export function assertionRequest(jwt: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return gw("/oauth/token", {
    method: "POST",
    headers: { ...FORM, "cf-connecting-ip": randomIp(), ...headers },
    body: form({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: jwt, ...extra }),
  });
}

/** The newest security event's reason for a client, once there are more than `before`. */
export async function nextReason(clientId: string, before: number): Promise<string | null> {
  const count = () => env.DB.prepare("SELECT COUNT(*) AS n FROM security_events WHERE client_id = ?").bind(clientId).first<number>("n");
  await expect.poll(count).toBeGreaterThan(before);
  return env.DB.prepare("SELECT reason FROM security_events WHERE client_id = ? ORDER BY id DESC LIMIT 1").bind(clientId).first<string>("reason");
}

export async function eventCount(clientId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM security_events WHERE client_id = ?").bind(clientId).first<number>("n")) ?? 0;
}
