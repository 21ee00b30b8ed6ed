import type { AuthEnv } from "./types";
import type { Context } from "hono";
import { ApiError } from "../../../shared/errors";
import { securityEvent, clientIp } from "./bearer";
import { drizzle } from "drizzle-orm/d1";
import { ClientStore, type Client, type ClientRow } from "./clients";
import { authConfig } from "./config";
import { clearFailures, failuresQuery, locksFrom, recordFailure, type FailureRow, type LimitPolicy } from "./rate-limit";

/** An OAuth error (RFC 6749 5.2) that also reads as RFC 9457 problem details. */
export function oauthError(status: number, error: string, description: string, headers: Record<string, string> = {}): ApiError {
  return new ApiError(status, error, description, {
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
    extra: { error, error_description: description },
  });
}

const MAX_PARAM = 4096;

/**
 * Reads an OAuth request body: form-encoded per RFC 6749 (JSON accepted too).
 * Parameters may appear once (RFC 6749 3.1); unknown ones are ignored.
 */
export async function readOAuthParams(c: Context): Promise<Map<string, string>> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  const out = new Map<string, string>();
  if (type === "application/x-www-form-urlencoded") {
    const params = new URLSearchParams(await c.req.text());
    for (const [k, v] of params) {
      if (out.has(k)) throw oauthError(400, "invalid_request", `The parameter ${safeName(k)} appears more than once.`);
      out.set(k, v);
    }
  } else if (type === "application/json") {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw oauthError(400, "invalid_request", "The body is not valid JSON.");
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw oauthError(400, "invalid_request", "The body must be a JSON object.");
    }
    for (const [k, v] of Object.entries(body)) {
      if (v === undefined || v === null) continue;
      if (typeof v !== "string") throw oauthError(400, "invalid_request", `The parameter ${safeName(k)} must be a string.`);
      out.set(k, v);
    }
  } else {
    throw oauthError(415, "invalid_request", "Send application/x-www-form-urlencoded (or application/json).");
  }
  for (const [k, v] of out) {
    if (v.length > MAX_PARAM) throw oauthError(400, "invalid_request", `The parameter ${safeName(k)} is too long.`);
  }
  return out;
}

/** Parameter names are echoed only when they are plain identifiers. */
function safeName(k: string): string {
  return /^[a-z_]{1,40}$/.test(k) ? k : "(unnamed)";
}

/** RFC 6749 2.3.1: HTTP Basic with form-urlencoded id and secret, or both in the body. */
function readCredentials(c: Context, params: Map<string, string>): { id: string; secret: string } | undefined {
  const h = c.req.header("authorization");
  const bodyId = params.get("client_id");
  const bodySecret = params.get("client_secret");
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
      return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
    } catch {
      throw oauthError(400, "invalid_request", "The Authorization header is not valid HTTP Basic.");
    }
  }
  if (bodyId !== undefined && bodySecret !== undefined) return { id: bodyId, secret: bodySecret };
  return undefined;
}

/**
 * Authenticates the calling client, with lockout after repeated failures per
 * client id and per address (429 + Retry-After).
 */
export async function authenticateClient(c: Context<AuthEnv>, params: Map<string, string>): Promise<Client> {
  const cfg = authConfig(c.env);
  const creds = readCredentials(c, params);
  const now = Math.floor(Date.now() / 1000);
  const ip = clientIp(c);
  const clientPolicy: LimitPolicy = { maxFailures: cfg.AUTH_MAX_FAILURES, windowSeconds: cfg.AUTH_FAILURE_WINDOW_SECONDS };
  // An address may fail more often than one client id: several clients can share a NAT.
  const ipPolicy: LimitPolicy = { maxFailures: cfg.AUTH_MAX_FAILURES * 4, windowSeconds: cfg.AUTH_FAILURE_WINDOW_SECONDS };
  const keys = [{ key: `ip:${ip}`, policy: ipPolicy }];
  if (creds && creds.id.length <= 200) keys.push({ key: `client:${creds.id}`, policy: clientPolicy });

  // One D1 round trip: the lockout windows and the client row together.
  const store = new ClientStore(c.env.DB, cfg);
  const usable = creds && creds.id.length <= 200 ? creds : undefined;
  const stored = usable && !store.bootstrap(usable.id) ? usable.id : undefined;
  let failures: FailureRow[];
  let row: ClientRow | undefined;
  if (stored) {
    const [f, r] = await drizzle(c.env.DB).batch([failuresQuery(c.env.DB, keys.map((k) => k.key)), store.lookup(stored)]);
    failures = f;
    row = r[0];
  } else {
    failures = await failuresQuery(c.env.DB, keys.map((k) => k.key));
  }
  const lock = locksFrom(failures, keys, now);
  if (lock.locked) {
    securityEvent(c, "client_lockout", { clientId: creds?.id.slice(0, 200), reason: "locked" });
    throw oauthError(429, "too_many_attempts", "Too many failed authentication attempts; retry later.", {
      "retry-after": String(lock.retryAfter),
    });
  }
  const client = !usable ? undefined : stored ? await store.verify(row, usable.secret) : await store.authenticate(usable.id, usable.secret);
  if (!client) {
    await recordFailure(c.env.DB, keys, now);
    securityEvent(c, "client_auth_failed", { clientId: creds?.id.slice(0, 200), reason: creds ? "bad_credentials" : "no_credentials" });
    throw oauthError(401, "invalid_client", "Client authentication failed.", {
      "www-authenticate": `Basic realm="health-platform"`,
    });
  }
  // Earlier failures of this client are forgotten once it authenticates (a write only when there were some).
  if (failures.some((f) => f.key === `client:${client.id}`)) c.executionCtx.waitUntil(clearFailures(c.env.DB, `client:${client.id}`));
  return client;
}
