import { decodeProtectedHeader, errors, jwtVerify } from "jose";
import { z } from "zod";
import { MAX_SHARDS, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../../../../shared/tenants";
import type { KeySet } from "./keys";

/**
 * Pure access-token validator (RFC 9068 section 4, RFC 8725): takes the token,
 * the configured keys and `now`, returns a tagged result. The reason is for
 * logs and security events only; clients always get the same generic 401.
 */
export type TokenFailure =
  | "oversized"
  | "malformed"
  | "unsupported_header"
  | "wrong_algorithm"
  | "wrong_type"
  | "unknown_key"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "issued_in_future"
  | "wrong_issuer"
  | "wrong_audience"
  | "invalid_claims";

export const AccessClaims = z.object({
  iss: z.string(),
  sub: z.string().min(1).max(200),
  aud: z.union([z.string(), z.array(z.string())]),
  client_id: z.string().min(1).max(200),
  exp: z.number().int(),
  iat: z.number().int(),
  nbf: z.number().int(),
  jti: z.string().min(1).max(100),
  scope: z.string().max(2000),
  roles: z.array(z.string().max(50)).max(20),
  device_id: z.string().max(200).optional(),
  /** The client's tenant; absent for a platform client (README "Tenants"). Never the reserved platform id. */
  tenant_id: z.string().regex(TENANT_ID_PATTERN).refine((t) => t !== PLATFORM_TENANT_ID).optional(),
  /** Private claim: the PHI shard the tenant is placed on, so the gateway routes without reading D1. */
  tenant_shard: z.number().int().min(0).max(MAX_SHARDS - 1).optional(),
}).refine((c) => (c.tenant_id === undefined) === (c.tenant_shard === undefined), { message: "tenant_id and tenant_shard go together" });
export type AccessClaims = z.infer<typeof AccessClaims>;

export type VerifyResult = { ok: true; claims: AccessClaims } | { ok: false; reason: TokenFailure };

export interface VerifyOptions {
  issuer: string;
  audience: string;
  /** Unix seconds. */
  now: number;
  maxLength: number;
  /** Allowed clock skew in seconds for exp / nbf / iat. */
  skew?: number;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Header parameters we never honour: keys or key locations chosen by the token itself. */
const FORBIDDEN_HEADERS = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc"];

export async function verifyAccessToken(token: string, ks: KeySet, opts: VerifyOptions): Promise<VerifyResult> {
  const skew = opts.skew ?? 30;
  if (token.length > opts.maxLength) return { ok: false, reason: "oversized" };
  if (!COMPACT_JWS.test(token)) return { ok: false, reason: "malformed" };
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (FORBIDDEN_HEADERS.some((h) => h in header)) return { ok: false, reason: "unsupported_header" };
  // Exact match against the one configured algorithm (RFC 8725 3.1): no `none`, no downgrade.
  if (header.alg !== ks.alg) return { ok: false, reason: "wrong_algorithm" };
  const typ = typeof header.typ === "string" ? header.typ.toLowerCase() : "";
  if (typ !== "at+jwt" && typ !== "application/at+jwt") return { ok: false, reason: "wrong_type" };
  const key = typeof header.kid === "string" ? ks.verify.get(header.kid) : undefined;
  if (!key) return { ok: false, reason: "unknown_key" };
  let payload: unknown;
  try {
    const r = await jwtVerify(token, key, {
      algorithms: [ks.alg],
      issuer: opts.issuer,
      audience: opts.audience,
      currentDate: new Date(opts.now * 1000),
      clockTolerance: skew,
      requiredClaims: ["exp", "iat", "nbf", "jti", "sub"],
    });
    payload = r.payload;
  } catch (err) {
    return { ok: false, reason: mapJoseError(err) };
  }
  const claims = AccessClaims.safeParse(payload);
  if (!claims.success) return { ok: false, reason: "invalid_claims" };
  if (claims.data.iat > opts.now + skew) return { ok: false, reason: "issued_in_future" };
  if (claims.data.sub !== claims.data.client_id) return { ok: false, reason: "invalid_claims" };
  return { ok: true, claims: claims.data };
}

function mapJoseError(err: unknown): TokenFailure {
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "nbf") return "not_yet_valid";
    if (err.claim === "iss") return "wrong_issuer";
    if (err.claim === "aud") return "wrong_audience";
    if (err.claim === "iat") return "issued_in_future";
    return "invalid_claims";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad_signature";
  if (err instanceof errors.JOSEAlgNotAllowed) return "wrong_algorithm";
  return "malformed";
}
