import { importJWK, type JWK } from "jose";
import { z } from "zod";
import { ASSERTION_ALGS } from "./tokens/client-assertion";

/**
 * A client's public signing keys, registered by value (RFC 7591 2 `jwks`, RFC 7517 5). Only
 * asymmetric public keys: a private member would mean the client handed us its private key,
 * and a symmetric key would turn its assertions into shared-secret MACs (RFC 8725 3.1).
 */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/, { message: "must be base64url" });

export const Jwk = z
  .object({
    kty: z.enum(["EC", "RSA"], { message: "kty must be EC or RSA: symmetric (oct) and other key types are not accepted" }),
    kid: z.string().min(1).max(100).regex(/^[\x21-\x7e]+$/, { message: "kid must be printable ASCII" }),
    use: z.literal("sig").optional(),
    alg: z.enum(ASSERTION_ALGS).optional(),
    key_ops: z.array(z.literal("verify")).max(1).optional(),
    crv: z.enum(["P-256", "P-384"]).optional(),
    x: b64url.max(100).optional(),
    y: b64url.max(100).optional(),
    n: b64url.max(1400).optional(),
    e: b64url.max(12).optional(),
  })
  .strict()
  .superRefine((k, ctx) => {
    if (k.kty === "EC" && !(k.crv && k.x && k.y)) ctx.addIssue({ code: "custom", message: "an EC key needs crv, x and y" });
    if (k.kty === "EC" && (k.n || k.e)) ctx.addIssue({ code: "custom", message: "an EC key has no n or e" });
    if (k.kty === "RSA" && !(k.n && k.e)) ctx.addIssue({ code: "custom", message: "an RSA key needs n and e" });
    if (k.kty === "RSA" && (k.crv || k.x || k.y)) ctx.addIssue({ code: "custom", message: "an RSA key has no crv, x or y" });
    // NIST SP 800-131A: RSA moduli of at least 2048 bits (342 base64url characters).
    if (k.kty === "RSA" && k.n && k.n.length < 342) ctx.addIssue({ code: "custom", message: "RSA keys need a modulus of at least 2048 bits" });
    if (k.alg && (k.alg.startsWith("RS") ? k.kty !== "RSA" : k.crv !== (k.alg === "ES256" ? "P-256" : "P-384"))) {
      ctx.addIssue({ code: "custom", message: "alg does not match the key type or curve" });
    }
  });

export const Jwks = z
  .object({ keys: z.array(Jwk).min(1).max(5) })
  .strict()
  .refine((s) => new Set(s.keys.map((k) => k.kid)).size === s.keys.length, { message: "each key needs its own kid" });

/**
 * A clear refusal for a key with private members, found before the schema's generic
 * "unrecognized key" (the request body is untrusted JSON: every step is checked).
 */
export function privateMemberIssue(body: unknown): { path: string; message: string } | undefined {
  const keys = (body as { jwks?: { keys?: unknown } } | null)?.jwks?.keys;
  if (!Array.isArray(keys)) return undefined;
  for (const [i, k] of keys.entries()) {
    if (typeof k !== "object" || k === null) continue;
    const m = PRIVATE_MEMBERS.find((name) => name in k);
    if (m) return { path: `jwks.keys.${i}.${m}`, message: `private key member '${m}' is not accepted: register public keys only` };
  }
  return undefined;
}

export type PublicJwk = z.infer<typeof Jwk>;

/** Only the public members, in a fixed order: what is stored and shown. */
export function publicMembers(k: PublicJwk): JWK {
  const out: JWK = { kty: k.kty, kid: k.kid };
  for (const m of ["use", "alg", "crv", "x", "y", "n", "e"] as const) {
    const v = k[m];
    if (v !== undefined) out[m] = v;
  }
  return out;
}

/** The kids of keys the runtime cannot import (a point off its curve, a malformed modulus). */
export async function unusableKeys(keys: JWK[]): Promise<string[]> {
  const bad: string[] = [];
  for (const k of keys) {
    const alg = k.alg ?? (k.kty === "RSA" ? "RS384" : k.crv === "P-256" ? "ES256" : "ES384");
    try {
      await importJWK(k, alg);
    } catch {
      bad.push(k.kid ?? "");
    }
  }
  return bad;
}

/** The stored JWK Set of a client, or none when the column is empty or unreadable. */
export function storedKeys(json: string | null): JWK[] {
  if (!json) return [];
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? (parsed as JWK[]) : [];
  } catch {
    return [];
  }
}
