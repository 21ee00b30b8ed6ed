import { ApiError } from "../../../shared/errors";
import { clientIpOf, securityEventOf, type RequestFacts } from "./bearer";
import { and, eq, lt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { readCredentials, type Credentials } from "./client-credentials";
import { failureRows, failuresStatement, loginRows, loginStatement } from "./client-lookup";
import { assertionClient, ClientStore, type Client, type ClientRow } from "./clients";
import { authConfig } from "./config";
import { clients, usedAssertions } from "./db/schema";
import { clearFailures, failureOutcome, failuresQuery, locksFrom, recordFailure, type LimitPolicy } from "./rate-limit";
import { DEFAULT_SKEW, verifyClientAssertion } from "./tokens/client-assertion";
import { keysForKid } from "./jwks-uri";
import { logger } from "../../../shared/logger";
import type { JWK } from "jose";

/** An OAuth error (RFC 6749 5.2) that also reads as RFC 9457 problem details. */
export function oauthError(status: number, error: string, description: string, headers: Record<string, string> = {}): ApiError {
  return new ApiError(status, error, description, {
    headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
    extra: { error, error_description: description },
  });
}

const MAX_PARAM = 4096;
const utf8 = new TextDecoder();

/**
 * Reads an OAuth request body: form-encoded per RFC 6749 (JSON accepted too).
 * Parameters may appear once (RFC 6749 3.1); unknown ones are ignored.
 */
export async function readOAuthParams(req: Request): Promise<Map<string, string>> {
  const type = (req.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  const out = new Map<string, string>();
  if (type === "application/x-www-form-urlencoded") {
    // Decoded from the bytes (UTF-8, as text() would): the runtime warns on every text() of a body whose type is not
    // text/*, a console line per token request locally and in devtools.
    const params = new URLSearchParams(utf8.decode(await req.arrayBuffer()));
    for (const [k, v] of params) {
      if (out.has(k)) throw oauthError(400, "invalid_request", `The parameter ${safeName(k)} appears more than once.`);
      out.set(k, v);
    }
  } else if (type === "application/json") {
    let body: unknown;
    try {
      body = await req.json();
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

/** The token endpoint URLs an assertion's `aud` may name (RFC 7523 3 item 3): the issuer's, absolute. */
export function assertionAudiences(issuer: string): string[] {
  const base = issuer.replace(/\/$/, "");
  return [`${base}/oauth/token`, `${base}/token`];
}

/** The statements of the one D1 round trip: lockout windows, the client row, the assertion's `jti`. */
async function loadState(r: RequestFacts, store: ClientStore, keys: string[], stored: string | undefined, creds: Credentials | undefined, now: number) {
  const db = r.env.DB;
  if (!stored) return { failures: failureRows(await failuresStatement(db, keys).run()), row: undefined, reserved: false };
  if (creds?.kind === "assertion" && creds.peek.ok) {
    const orm = drizzle(db);
    const failures = failuresQuery(db, keys);
    const { jti, exp } = creds.peek.peek;
    // Expired reservations go in the same batch: a row outlives its assertion by the skew only.
    const [f, r, , ins] = await orm.batch([
      failures,
      store.lookup(stored),
      orm.delete(usedAssertions).where(lt(usedAssertions.expiresAt, now - DEFAULT_SKEW)),
      // RFC 7523 3 item 7: the primary key refuses a jti this client already used. Only an enabled
      // private_key_jwt client reserves anything: an assertion naming any other id writes nothing.
      orm
        .insert(usedAssertions)
        .select(
          orm
            .select({ clientId: clients.id, jti: sql<string>`${jti}`.as("jti"), expiresAt: sql<number>`${exp}`.as("expires_at") })
            .from(clients)
            .where(and(eq(clients.id, stored), eq(clients.authMethod, "private_key_jwt"), eq(clients.disabled, false))),
        )
        .onConflictDoNothing()
        .returning({ jti: usedAssertions.jti }),
    ]);
    return { failures: f, row: r[0], reserved: ins.length === 1 };
  }
  // A client secret (the common case): one prepared statement, no query building (client-lookup.ts).
  return { ...loginRows(await loginStatement(db, stored, keys).run()), reserved: false };
}

/**
 * The client's keys for the asserted `kid`: registered by value, or fetched from its `jwks_uri`
 * (cached per isolate). A fetch failure is logged with the request id, never sent to the client.
 */
async function registeredKeys(r: RequestFacts, client: Client, kid: string): Promise<{ keys: JWK[] } | { reason: string }> {
  if (!client.jwksUri) return { keys: client.jwks };
  const found = await keysForKid(client.id, client.jwksUri, kid, Date.now());
  if (found.ok) return { keys: found.keys };
  if (found.reason !== "unknown_key") logger.warn("jwks_uri_failed", { request_id: r.requestId, client_id: client.id, reason: found.reason });
  return { reason: found.reason };
}

/** Checks an assertion against the client's registered keys; a fixed reason code when it fails. */
async function checkAssertion(
  req: RequestFacts,
  creds: Extract<Credentials, { kind: "assertion" }>,
  row: ClientRow | undefined,
  reserved: boolean,
  issuer: string,
  now: number,
): Promise<{ client: Client } | { reason: string }> {
  if (!creds.peek.ok) return { reason: creds.peek.reason };
  if (!row) return { reason: "unknown_client" };
  const client = assertionClient(row);
  if (!client) return { reason: row.disabled ? "client_disabled" : "client_uses_secret" };
  const keys = await registeredKeys(req, client, creds.peek.peek.kid);
  if ("reason" in keys) return keys;
  const r = await verifyClientAssertion(creds.assertion, { clientId: client.id, keys: keys.keys, audiences: assertionAudiences(issuer), now });
  if (!r.ok) return { reason: r.reason };
  // Checked after the signature, so a forged assertion is never reported as a replay.
  if (!reserved) return { reason: "replayed" };
  return { client };
}

/**
 * Authenticates the calling client by secret or by private_key_jwt assertion. A client id
 * with repeated failures is locked (429 + Retry-After, even for the right credentials); an
 * address with repeated failures gets 429 for its failing attempts only (`failureOutcome`).
 */
export async function authenticateClient(req: RequestFacts, params: Map<string, string>): Promise<Client> {
  const cfg = authConfig(req.env);
  const now = Math.floor(Date.now() / 1000);
  const creds = readCredentials(req.headers, params, now);
  const ip = clientIpOf(req.headers);
  const clientPolicy: LimitPolicy = { maxFailures: cfg.AUTH_MAX_FAILURES, windowSeconds: cfg.AUTH_FAILURE_WINDOW_SECONDS };
  // An address may fail more often than one client id: several clients can share a NAT.
  const ipPolicy: LimitPolicy = { maxFailures: cfg.AUTH_MAX_FAILURES * 4, windowSeconds: cfg.AUTH_FAILURE_WINDOW_SECONDS };
  const id = creds?.id !== undefined && creds.id.length <= 200 ? creds.id : undefined;
  const addressKey = { key: `ip:${ip}`, policy: ipPolicy };
  const clientKey = id !== undefined ? { key: `client:${id}`, policy: clientPolicy } : undefined;
  const keys = clientKey ? [addressKey, clientKey] : [addressKey];

  const store = new ClientStore(req.env.DB, cfg);
  const boot = id !== undefined ? store.bootstrap(id) : undefined;
  const stored = id !== undefined && !boot ? id : undefined;
  const { failures, row, reserved } = await loadState(req, store, keys.map((k) => k.key), stored, creds, now);
  const clientLock = clientKey ? locksFrom(failures, [clientKey], now) : { locked: false as const };
  if (clientLock.locked) {
    securityEventOf(req, "client_lockout", { clientId: id, reason: "client_locked" });
    throw tooMany(clientLock.retryAfter);
  }

  let client: Client | undefined;
  let reason = "no_credentials";
  if (creds?.kind === "secret") {
    client = id === undefined ? undefined : boot ? await store.authenticate(id, creds.secret) : await store.verify(row, creds.secret);
    reason = "bad_credentials";
  } else if (creds?.kind === "assertion") {
    const r = boot ? { reason: "client_uses_secret" } : await checkAssertion(req, creds, row, reserved, cfg.JWT_ISSUER, now);
    if ("client" in r) client = r.client;
    else reason = `assertion_${r.reason}`;
  }

  if (!client) {
    const outcome = failureOutcome(locksFrom(failures, [addressKey], now), row !== undefined || boot !== undefined);
    const counted = keys.filter((k) => outcome.count.includes(k === addressKey ? "address" : "client"));
    // Every policy's window is AUTH_FAILURE_WINDOW_SECONDS long: windows that old have ended, whatever their key.
    if (counted.length > 0) await recordFailure(req.env.DB, counted, now, cfg.AUTH_FAILURE_WINDOW_SECONDS);
    if (outcome.status === 429) {
      securityEventOf(req, "client_lockout", { clientId: id, reason: `address_limited:${reason}` });
      throw tooMany(outcome.retryAfter ?? 1);
    }
    securityEventOf(req, "client_auth_failed", { clientId: id, reason });
    throw oauthError(401, "invalid_client", "Client authentication failed.", {
      "www-authenticate": `Basic realm="health-platform"`,
    });
  }
  // Earlier failures of this client are forgotten once it authenticates (a write only when there were some).
  if (failures.some((f) => f.key === `client:${client.id}`)) req.executionCtx.waitUntil(clearFailures(req.env.DB, `client:${client.id}`));
  return client;
}

function tooMany(retryAfter: number): ApiError {
  return oauthError(429, "too_many_attempts", "Too many failed authentication attempts; retry later.", {
    "retry-after": String(retryAfter),
  });
}
