import type { Context } from "hono";

/**
 * The base URL clients use for this FHIR server (R4 http.html#root), e.g.
 * `https://api.example.com/v1/phi`. FHIR requires absolute `fullUrl`s and paging links,
 * and a client resolves them against nothing else. The worker itself is reached at an
 * internal host (`https://phi.internal/...`), so the gateway states the origin it was
 * called at in `X-Forwarded-Host` / `X-Forwarded-Proto` (it strips any a client sent
 * and sets its own on every forwarded request). Without them (a direct binding call, a
 * test) the request's own origin is the base.
 */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
export const PATH_PREFIX = "/v1/phi";

export function publicBase(c: Context): string {
  const host = c.req.header("x-forwarded-host");
  const proto = c.req.header("x-forwarded-proto");
  if (host && HOST.test(host) && (proto === "https" || proto === "http")) return `${proto}://${host}${PATH_PREFIX}`;
  return `${new URL(c.req.url).origin}${PATH_PREFIX}`;
}

/** The origin part of the base (where the gateway's token endpoint lives too). */
export function publicOrigin(c: Context): string {
  return publicBase(c).slice(0, -PATH_PREFIX.length);
}

/**
 * The token endpoint a discovery document names: the gateway's issuer (JWT_ISSUER, in `X-OAuth-Issuer` on
 * public routes; the gateway strips any a client sent) + `/oauth/token`, the URL the SMART configuration names
 * and a `private_key_jwt` assertion's `aud` must name. Without it (a direct binding call, a test): the origin.
 */
export function tokenEndpoint(c: Context): string {
  const issuer = c.req.header("x-oauth-issuer");
  if (issuer && issuer.length <= 2048) {
    try {
      const u = new URL(issuer);
      if ((u.protocol === "https:" || u.protocol === "http:") && HOST.test(u.host)) return `${issuer.replace(/\/+$/, "")}/oauth/token`;
    } catch {
      // Not a URL: fall back to the origin.
    }
  }
  return `${publicOrigin(c)}/oauth/token`;
}
