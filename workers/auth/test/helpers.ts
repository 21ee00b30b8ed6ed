import { createExecutionContext, env, SELF, waitOnExecutionContext } from "cloudflare:test";
import { importJWK, SignJWT, type JWK } from "jose";
import worker, { app } from "../src/index";

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

/**
 * The gateway's own fetch handler called in this isolate, with the same env (real D1, real
 * service bindings to the internal workers, real Durable Objects) and a real execution
 * context whose `waitUntil` work is awaited before the answer is returned. For suites that
 * send tens of thousands of requests: the pool builds a new entrypoint wrapper for every
 * `SELF.fetch` and stacks one more Proxy on its prototype each time
 * (vitest-pool-workers 0.15 `createProxyPrototypeClass`), so those requests slow down
 * within a file (about 10x slower than this from the start here) until
 * "Maximum call stack size exceeded".
 */
export async function gwDirect(path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const handler = worker as Required<Pick<ExportedHandler<Env>, "fetch">>;
  const res = await handler.fetch(new Request(BASE + path, init) as Request<unknown, IncomingRequestCfProperties>, env, ctx);
  if (res.status === 101) return res; // a WebSocket: its work goes on with the socket
  // The body is read in full first, so the work the handler left in waitUntil has ended too.
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
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

/** Text that must never appear in an answer: stack frames, source paths, runtime internals. */
export const LEAK = /\n\s+at |^\s*at .+:\d+|\(?[\w/.-]+\.(?:ts|js|mjs):\d+|file:\/\/|\/work\/|node_modules|workerd|miniflare/im;

/**
 * Asserts an error answer's body: an RFC 9457 problem (application/problem+json, or an OAuth
 * error that also reads as one: application/json with the same fields), or a FHIR
 * OperationOutcome on /v1/phi routes; never a stack trace or a source path.
 */
export async function expectErrorBody(res: Response, path: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (LEAK.test(text)) throw new Error(`${res.status} on ${path} leaks internals: ${text.slice(0, 300)}`);
  const type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`${res.status} on ${path}: not JSON (${type}): ${text.slice(0, 200)}`);
  }
  if (type === "application/fhir+json") {
    if (path !== "/v1/phi" && !path.startsWith("/v1/phi/")) throw new Error(`OperationOutcome outside /v1/phi: ${path}`);
    const issues = body.issue as unknown[] | undefined;
    if (body.resourceType !== "OperationOutcome" || !Array.isArray(issues) || issues.length === 0) {
      throw new Error(`${res.status} on ${path}: not an OperationOutcome: ${text.slice(0, 200)}`);
    }
    return body;
  }
  const oauth = /^\/(oauth\/|token$)/.test(path) && type === "application/json";
  if (type !== "application/problem+json" && !oauth) throw new Error(`${res.status} on ${path}: content-type ${type}: ${text.slice(0, 200)}`);
  if (body.status !== res.status || typeof body.type !== "string" || typeof body.title !== "string" || typeof body.code !== "string") {
    throw new Error(`${res.status} on ${path}: not a problem body: ${text.slice(0, 200)}`);
  }
  return body;
}

/** Row counts of every table of a D1 database. */
export async function tableCounts(db: D1Database): Promise<Record<string, number>> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'")
    .all<{ name: string }>();
  const out: Record<string, number> = {};
  for (const { name } of results) {
    const row = await db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).first<{ n: number }>();
    out[name] = row?.n ?? 0;
  }
  return out;
}

/** Every database behind the gateway, by the name used in assertions. */
export function allDatabases(): Record<"auth" | "phi" | "payments" | "devices", D1Database> {
  return { auth: env.DB, phi: env.PHI_DB, payments: env.PAYMENTS_DB, devices: env.DEVICES_DB };
}

export const FHIR = { "content-type": "application/fhir+json" };
export const JSON_CT = { "content-type": "application/json" };

/** A Patient created through the gateway; returns its id. */
export async function seedPatient(): Promise<string> {
  const res = await gw("/v1/phi/Patient", {
    method: "POST",
    headers: { authorization: `Bearer ${await token("phi:write")}`, ...FHIR },
    body: JSON.stringify({ resourceType: "Patient", name: [{ family: "Seed", given: ["Fuzz"] }], gender: "unknown" }),
  });
  if (res.status !== 201) throw new Error(`seed patient: ${res.status} ${await res.text()}`);
  return (await res.json<{ id: string }>()).id;
}

/** A payment authorized but not captured (manual capture); returns its id and payment method. */
export async function seedPayment(): Promise<{ id: string; payment_method: string }> {
  const res = await gw("/v1/payments", {
    method: "POST",
    headers: { authorization: `Bearer ${await token("payment:write")}`, ...JSON_CT, "idempotency-key": crypto.randomUUID() },
    body: JSON.stringify({
      amount: 1234,
      currency: "usd",
      capture: "manual",
      card: { number: "4242424242424242", exp_month: 12, exp_year: new Date().getUTCFullYear() + 3, cvc: "123" },
    }),
  });
  if (res.status !== 201) throw new Error(`seed payment: ${res.status} ${await res.text()}`);
  return res.json<{ id: string; payment_method: string }>();
}

/** A registered device and a token of its own credentials (role `device`: scope device:connect). */
export async function seedDevice(label = "fuzz"): Promise<{ id: string; token: string; client_id: string }> {
  const res = await gw("/v1/devices", {
    method: "POST",
    headers: { authorization: `Bearer ${await token("device:write")}`, ...JSON_CT },
    body: JSON.stringify({ udi: `(01)0000${label}`, model: "M1", manufacturer: "Acme", serial: `SN-${crypto.randomUUID()}`, type: "pulse_oximeter" }),
  });
  if (res.status !== 201) throw new Error(`seed device: ${res.status} ${await res.text()}`);
  const d = await res.json<{ id: string; credentials: { client_id: string; client_secret: string } }>();
  return { id: d.id, token: await clientToken(d.credentials), client_id: d.credentials.client_id };
}

/** The same request through the gateway's Hono app itself (what the proxy and token paths in front of it must match). */
export async function viaApp(path: string, init: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(BASE + path, init), env, ctx);
  const body = await res.arrayBuffer();
  await waitOnExecutionContext(ctx);
  return new Response(body, { status: res.status, headers: res.headers });
}

/** Headers that differ per request by design. */
export const PER_REQUEST = new Set(["x-request-id", "date", "x-d1-bookmark", "content-length"]);

/** An answer's headers but the per-request ones, sorted: what two paths' answers to the same request must share. */
export function comparable(res: Response): Record<string, string> {
  return Object.fromEntries([...res.headers].filter(([k]) => !PER_REQUEST.has(k)).sort(([a], [b]) => a.localeCompare(b)));
}
