import { errors, importJWK, jwtVerify, type JWK } from "jose";

/**
 * Pure validator of `private_key_jwt` client assertions (RFC 7523 sections 2.2 and 3, SMART
 * Backend Services): takes the assertion, the client's REGISTERED public keys, the accepted
 * audiences and `now`, and returns a tagged result. The reason is for security events only;
 * the wire answer is always the same `invalid_client`. Replay (`jti` reuse) is decided by the
 * store (an insert that a duplicate refuses), not here.
 */
export const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** Asymmetric algorithms only (RFC 8725 3.1): never `none`, never HS*. SMART requires ES384 and RS384. */
export const ASSERTION_ALGS = ["ES256", "ES384", "RS256", "RS384"] as const;
export type AssertionAlg = (typeof ASSERTION_ALGS)[number];

/** SMART Backend Services: an assertion lives at most five minutes. */
export const MAX_ASSERTION_LIFETIME = 300;
export const DEFAULT_SKEW = 30;
export const MAX_ASSERTION_LENGTH = 4096;

export type AssertionFailure =
  | "oversized"
  | "malformed"
  | "unsupported_header"
  | "wrong_algorithm"
  | "missing_kid"
  | "issuer_not_subject"
  | "wrong_subject"
  | "missing_jti"
  | "missing_exp"
  | "expired"
  | "lifetime_too_long"
  | "not_yet_valid"
  | "issued_in_future"
  | "unknown_key"
  | "bad_signature"
  | "wrong_audience"
  | "invalid_claims";

/** What the unverified assertion claims: enough to find the client and reserve its `jti`. */
export interface AssertionPeek {
  clientId: string;
  jti: string;
  exp: number;
  kid: string;
  alg: AssertionAlg;
}

export type PeekResult = { ok: true; peek: AssertionPeek } | { ok: false; reason: AssertionFailure; clientId?: string };
export type AssertionResult = { ok: true; clientId: string; jti: string; exp: number } | { ok: false; reason: AssertionFailure };

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Header parameters never honoured: a key or key location chosen by the assertion itself. */
const FORBIDDEN_HEADERS = ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc"];

function decodePart(part: string): unknown {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isId = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 200;
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);

/**
 * Structural and time checks on the UNVERIFIED assertion (nothing here grants anything): run
 * before storage is touched, so only short-lived, well-formed assertions reserve a `jti`.
 */
export function peekAssertion(assertion: string, now: number, skew = DEFAULT_SKEW): PeekResult {
  if (assertion.length > MAX_ASSERTION_LENGTH) return { ok: false, reason: "oversized" };
  if (!COMPACT_JWS.test(assertion)) return { ok: false, reason: "malformed" };
  const [h = "", p = ""] = assertion.split(".");
  let header: unknown;
  let payload: unknown;
  try {
    header = decodePart(h);
    payload = decodePart(p);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  if (!isObject(header) || !isObject(payload)) return { ok: false, reason: "malformed" };
  const { iss, sub, jti, exp, iat, nbf } = payload;
  // Named as soon as it is readable, so every later failure counts against that client's lockout.
  const clientId = isId(sub) ? sub : undefined;
  const fail = (reason: AssertionFailure): PeekResult => (clientId === undefined ? { ok: false, reason } : { ok: false, reason, clientId });
  if (FORBIDDEN_HEADERS.some((k) => k in header)) return fail("unsupported_header");
  const alg = ASSERTION_ALGS.find((a) => a === header.alg);
  if (!alg) return fail("wrong_algorithm");
  if (typeof header.kid !== "string" || header.kid.length === 0 || header.kid.length > 200) return fail("missing_kid");
  // RFC 7523 3 items 1-2: for client authentication both name the client.
  if (clientId === undefined) return fail("invalid_claims");
  if (iss !== sub) return fail("issuer_not_subject");
  if (typeof jti !== "string" || jti.length === 0) return { ok: false, reason: "missing_jti", clientId };
  if (jti.length > 200) return { ok: false, reason: "invalid_claims", clientId };
  if (exp === undefined) return { ok: false, reason: "missing_exp", clientId };
  if (!isTime(exp) || (iat !== undefined && !isTime(iat)) || (nbf !== undefined && !isTime(nbf))) {
    return { ok: false, reason: "invalid_claims", clientId };
  }
  // RFC 7523 3 item 4; SMART: exp no more than five minutes in the future.
  if (exp < now - skew) return { ok: false, reason: "expired", clientId };
  if (exp > now + MAX_ASSERTION_LIFETIME + skew) return { ok: false, reason: "lifetime_too_long", clientId };
  if (iat !== undefined && iat > now + skew) return { ok: false, reason: "issued_in_future", clientId };
  if (iat !== undefined && exp - iat > MAX_ASSERTION_LIFETIME) return { ok: false, reason: "lifetime_too_long", clientId };
  if (nbf !== undefined && nbf > now + skew) return { ok: false, reason: "not_yet_valid", clientId };
  return { ok: true, peek: { clientId, jti, exp, kid: header.kid, alg } };
}

export interface AssertionOptions {
  /** The client the assertion must name (the row its keys came from). */
  clientId: string;
  /** The client's registered keys: the only keys that can verify. */
  keys: JWK[];
  /** RFC 7523 3 item 3: the token endpoint URLs that identify this server. */
  audiences: string[];
  /** Unix seconds. */
  now: number;
  skew?: number;
}

/** The curve or key type each algorithm needs: a key is never used with another algorithm. */
function keyFits(jwk: JWK, alg: AssertionAlg): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (alg === "ES256") return jwk.kty === "EC" && jwk.crv === "P-256";
  if (alg === "ES384") return jwk.kty === "EC" && jwk.crv === "P-384";
  return jwk.kty === "RSA";
}

export async function verifyClientAssertion(assertion: string, opts: AssertionOptions): Promise<AssertionResult> {
  const skew = opts.skew ?? DEFAULT_SKEW;
  const peeked = peekAssertion(assertion, opts.now, skew);
  if (!peeked.ok) return { ok: false, reason: peeked.reason };
  const { peek } = peeked;
  if (peek.clientId !== opts.clientId) return { ok: false, reason: "wrong_subject" };
  const jwk = opts.keys.find((k) => k.kid === peek.kid);
  if (!jwk) return { ok: false, reason: "unknown_key" };
  if (!keyFits(jwk, peek.alg)) return { ok: false, reason: "wrong_algorithm" };
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e }, peek.alg);
  } catch {
    return { ok: false, reason: "unknown_key" };
  }
  try {
    await jwtVerify(assertion, key, {
      algorithms: [peek.alg],
      issuer: opts.clientId,
      subject: opts.clientId,
      audience: opts.audiences,
      currentDate: new Date(opts.now * 1000),
      clockTolerance: skew,
      requiredClaims: ["exp", "jti", "iss", "sub", "aud"],
    });
  } catch (err) {
    return { ok: false, reason: mapJoseError(err) };
  }
  return { ok: true, clientId: peek.clientId, jti: peek.jti, exp: peek.exp };
}

function mapJoseError(err: unknown): AssertionFailure {
  if (err instanceof errors.JWTExpired) return "expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return "wrong_audience";
    if (err.claim === "nbf") return "not_yet_valid";
    if (err.claim === "iat") return "issued_in_future";
    return "invalid_claims";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad_signature";
  if (err instanceof errors.JOSEAlgNotAllowed) return "wrong_algorithm";
  return "malformed";
}
