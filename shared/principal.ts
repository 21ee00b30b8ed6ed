import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { fromBase64Url, hmacSha256, hmacVerify, toBase64Url } from "./crypto";
import { ApiError } from "./errors";
import { hasAllScopes } from "./scopes";
import { MAX_SHARDS, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "./tenants";

/**
 * The verified caller, as the gateway attaches it to a forwarded request.
 * Internal workers trust only this (DESIGN.md, "Request flow" step 4).
 */
export const PrincipalSchema = z.object({
  sub: z.string(),
  clientId: z.string(),
  roles: z.array(z.string()),
  scopes: z.array(z.string()),
  /** The access token's `jti` (never the token itself). */
  tokenId: z.string(),
  /** The organization whose data this request may reach (`ten_platform` for platform clients). */
  tenantId: z.string().regex(TENANT_ID_PATTERN),
  /** The PHI database shard the tenant is placed on; phi uses it for the whole request. */
  shard: z.number().int().min(0).max(MAX_SHARDS - 1),
  /** Set for device credentials: the one device this client may act as. */
  deviceId: z.string().optional(),
  /** The client's address as the gateway saw it. */
  ip: z.string(),
  /** Unix seconds when the gateway attached it. */
  iat: z.number().int(),
});
export type Principal = z.infer<typeof PrincipalSchema>;

export const PRINCIPAL_HEADER = "x-gateway-principal";

/** How long an attached principal is accepted: it only has to cross one service binding. */
const MAX_AGE_SECONDS = 60;

/**
 * Per-isolate memos of principal headers, both ways: the gateway signs the same principal for every request a
 * client makes with one token within a second (its `iat` is in seconds), and a worker receives the same header
 * as many times. Plain data only (strings and frozen principals), keyed by the exact JSON or header bytes and
 * honoured for the same key only, so an answer from memory is the answer the HMAC would give; bounded, the
 * oldest entry leaving first. A stale header is still refused on every request (the age check runs on a hit).
 */
export const PRINCIPAL_MEMO_MAX = 1024;
const signedMemo = new Map<string, { key: string; signed: string }>();
const verifiedMemo = new Map<string, { key: string; principal: Principal }>();

function remember<V>(memo: Map<string, V>, k: string, v: V): void {
  if (memo.size >= PRINCIPAL_MEMO_MAX) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(k, v);
}

/** How many principals this isolate remembers as signed and as verified (tests: bounded, and used). */
export function principalMemoSizes(): { signed: number; verified: number } {
  return { signed: signedMemo.size, verified: verifiedMemo.size };
}

/** `<base64url(json)>.<base64url(hmac)>`, HMAC-SHA256 under the shared gateway key. */
export async function signPrincipal(key: string, p: Principal): Promise<string> {
  const json = JSON.stringify(p);
  const hit = signedMemo.get(json);
  if (hit && hit.key === key) return hit.signed;
  const payload = toBase64Url(new TextEncoder().encode(json));
  const signed = `${payload}.${toBase64Url(await hmacSha256(key, payload))}`;
  remember(signedMemo, json, { key, signed });
  return signed;
}

/** A principal no request can change: it is shared by every request that presents the same header. */
function frozen(p: Principal): Principal {
  Object.freeze(p.roles);
  Object.freeze(p.scopes);
  return Object.freeze(p);
}

export type PrincipalResult = { ok: true; principal: Principal } | { ok: false; reason: string };

/** Pure check of an attached principal header against the key and `now` (unix seconds). */
export async function verifyPrincipal(key: string, header: string | undefined, now: number): Promise<PrincipalResult> {
  if (!header) return { ok: false, reason: "missing" };
  if (header.length > 8192) return { ok: false, reason: "oversized" };
  const known = verifiedMemo.get(header);
  if (known && known.key === key) {
    if (Math.abs(now - known.principal.iat) > MAX_AGE_SECONDS) return { ok: false, reason: "stale" };
    return { ok: true, principal: known.principal };
  }
  const [payload, mac, extra] = header.split(".");
  if (!payload || !mac || extra !== undefined) return { ok: false, reason: "malformed" };
  let macBytes: Uint8Array;
  try {
    macBytes = fromBase64Url(mac);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (!(await hmacVerify(key, payload, macBytes))) return { ok: false, reason: "bad_signature" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(fromBase64Url(payload)));
  } catch {
    return { ok: false, reason: "malformed" };
  }
  const r = PrincipalSchema.safeParse(parsed);
  if (!r.success) return { ok: false, reason: "malformed" };
  if (Math.abs(now - r.data.iat) > MAX_AGE_SECONDS) return { ok: false, reason: "stale" };
  const principal = frozen(r.data);
  remember(verifiedMemo, header, { key, principal });
  return { ok: true, principal };
}

export type PrincipalVariables = { principal: Principal };

/**
 * Middleware for internal workers: refuses (401) any request that did not come
 * through the gateway with a valid principal, and exposes it as `c.get("principal")`.
 */
export function requirePrincipal(getKey: (env: unknown) => string): MiddlewareHandler<{ Variables: PrincipalVariables }> {
  return async (c, next) => {
    const r = await verifyPrincipal(getKey(c.env), c.req.header(PRINCIPAL_HEADER), Math.floor(Date.now() / 1000));
    if (!r.ok) throw new ApiError(401, "unauthenticated", "This service is reachable only through the gateway.");
    c.set("principal", r.principal);
    await next();
  };
}

/**
 * Middleware for a worker's `/internal` routes (offboarding, tenant moves): the gateway's table never
 * leads there, so only auth reaches them, over a service binding, with a principal it signs for a
 * platform admin. Anything else is refused: no principal 401, another principal 403.
 */
export function requirePlatformPrincipal(getKey: (env: unknown) => string): MiddlewareHandler<{ Variables: PrincipalVariables }> {
  const principal = requirePrincipal(getKey);
  return (c, next) =>
    principal(c, async () => {
      const p = c.get("principal");
      if (p.tenantId !== PLATFORM_TENANT_ID || !hasAllScopes(p.scopes, ["admin"])) {
        throw new ApiError(403, "platform_admin_required", "Only a platform administrator may do this.");
      }
      await next();
    });
}

/** Defense in depth inside a worker: the gateway already checked scopes per route. */
export function assertScopes(p: Principal, ...wanted: string[]): void {
  if (!hasAllScopes(p.scopes, wanted)) {
    throw new ApiError(403, "insufficient_scope", `This operation needs the scope ${wanted.join(" ")}.`);
  }
}
