import { oauthError } from "./client-auth";
import { JWT_BEARER, peekAssertion, type PeekResult } from "./tokens/client-assertion";

/** How the caller presented itself: a secret (RFC 6749 2.3.1) or a JWT assertion (RFC 7523 2.2). */
export type Credentials =
  | { kind: "secret"; id: string; secret: string }
  | { kind: "assertion"; id: string | undefined; assertion: string; peek: PeekResult };

/**
 * Reads the client's credentials: HTTP Basic, id and secret in the body, or
 * `client_assertion_type` + `client_assertion`. One method only (RFC 6749 2.3).
 * Undefined when none is presented.
 */
export function readCredentials(headers: Headers, params: Map<string, string>, now: number): Credentials | undefined {
  const h = headers.get("authorization") ?? undefined;
  const bodyId = params.get("client_id");
  const bodySecret = params.get("client_secret");
  const assertionType = params.get("client_assertion_type");
  const assertion = params.get("client_assertion");
  if (assertionType !== undefined || assertion !== undefined) {
    if (h || bodySecret !== undefined) {
      throw oauthError(400, "invalid_request", "Use one client authentication method, not two (RFC 6749 2.3).");
    }
    if (assertionType !== JWT_BEARER) throw oauthError(400, "invalid_request", `client_assertion_type must be ${JWT_BEARER}.`);
    if (!assertion) throw oauthError(400, "invalid_request", "client_assertion is required with client_assertion_type.");
    const peek = peekAssertion(assertion, now);
    const id = peek.ok ? peek.peek.clientId : peek.clientId;
    // RFC 7521 4.2: a client_id sent beside the assertion must name the same client.
    if (bodyId !== undefined && id !== undefined && bodyId !== id) {
      return { kind: "assertion", id, assertion, peek: { ok: false, reason: "wrong_subject", clientId: id } };
    }
    return { kind: "assertion", id, assertion, peek };
  }
  if (h) {
    const m = /^Basic[ ]+([A-Za-z0-9+/=]+)$/i.exec(h.trim());
    if (!m?.[1]) throw oauthError(400, "invalid_request", "The Authorization header is not valid HTTP Basic.");
    if (bodySecret !== undefined) {
      throw oauthError(400, "invalid_request", "Use one client authentication method, not two (RFC 6749 2.3).");
    }
    let decoded: string;
    try {
      decoded = atob(m[1]);
    } catch {
      throw oauthError(400, "invalid_request", "The Authorization header is not valid HTTP Basic.");
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw oauthError(400, "invalid_request", "The Authorization header is not valid HTTP Basic.");
    const unform = (s: string) => decodeURIComponent(s.replace(/\+/g, " "));
    try {
      return { kind: "secret", id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
    } catch {
      throw oauthError(400, "invalid_request", "The Authorization header is not valid HTTP Basic.");
    }
  }
  if (bodyId !== undefined && bodySecret !== undefined) return { kind: "secret", id: bodyId, secret: bodySecret };
  return undefined;
}
