// A conventional Node stack for the same work, run by `npm run bench` as a child process so its CPU can be
// measured apart from the load generator: node:http + jose (ES256) + node:sqlite in-process (WAL).
//   POST /oauth/token              client_credentials: client row from SQLite, SHA-256 secret check, ES256 JWT
//   GET  /v1/phi/Patient/:id       verify the bearer token, one select by primary key, AES-256-GCM decrypt
//   GET  /audited/v1/phi/Patient/:id  the same plus one audit insert (no chain)
// Env: BASELINE_DB (SQLite file, seeded by the bench), BASELINE_JWK (private ES256 JWK), PHI_ENCRYPTION_KEYS,
// JWT_ISSUER, JWT_AUDIENCE. Prints `listening <port>` once ready.
import { createDecipheriv, createHash, randomUUID, timingSafeEqual } from "node:crypto";
import http from "node:http";
import { DatabaseSync } from "node:sqlite";
import { importJWK, jwtVerify, SignJWT } from "jose";

const env = process.env;
const db = new DatabaseSync(env.BASELINE_DB);
db.exec("PRAGMA journal_mode = WAL");
const jwk = JSON.parse(env.BASELINE_JWK);
const signKey = await importJWK({ ...jwk, alg: "ES256" }, "ES256");
const { d: _d, ...pub } = jwk;
const verifyKey = await importJWK({ ...pub, alg: "ES256" }, "ES256");
const aesKeys = new Map(env.PHI_ENCRYPTION_KEYS.split(",").map((e) => e.trim().split(":")).map(([kid, m]) => [kid, Buffer.from(m, "base64url")]));

const getClient = db.prepare("SELECT id, secret_hash, roles, scopes, disabled FROM clients WHERE id = ?");
const getHead = db.prepare("SELECT resource_type, id, version_id, last_updated, deleted, sealed FROM resource_versions WHERE resource_type = 'Patient' AND id = ? ORDER BY version_id DESC LIMIT 1");
const insertAudit = db.prepare("INSERT INTO audit (at, actor_sub, action, resource_type, resource_id, outcome, request_id) VALUES (?, ?, 'read', 'Patient', ?, 'success', ?)");

const sha256 = (s) => createHash("sha256").update(s).digest();

function send(res, status, body, type = "application/json") {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}

const getDataKey = db.prepare("SELECT tenant_id, wrapped FROM tenant_keys WHERE kid = ?");

function open(key, iv, ct, aad) {
  const raw = Buffer.from(ct, "base64url");
  const d = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(0, raw.length - 16)), d.final()]).toString("utf8");
}

/** A tenant's data key (shared/keys/tenant-keys.ts), unwrapped with the platform key once, then from memory. */
function keyOf(kid) {
  const known = aesKeys.get(kid);
  if (known || !kid.startsWith("tk_")) return known;
  const row = getDataKey.get(kid);
  const [, wkid, iv, ct] = row.wrapped.split(".");
  const key = Buffer.from(open(aesKeys.get(wkid), iv, ct, `tenant_keys/phi/${row.tenant_id}/${kid}`), "base64url");
  aesKeys.set(kid, key);
  return key;
}

function unseal(sealed, aad) {
  const [, kid, iv, ct] = sealed.split(".");
  return JSON.parse(open(keyOf(kid), iv, ct, aad));
}

async function token(req, res, body) {
  const h = req.headers.authorization ?? "";
  const [id, secret] = Buffer.from(h.slice(6), "base64").toString().split(":");
  const row = id ? getClient.get(id) : undefined;
  const ok = timingSafeEqual(sha256(createHash("sha256").update(secret ?? "").digest("hex")), sha256(row?.secret_hash ?? "0".repeat(64)));
  if (!row || !ok || row.disabled) return send(res, 401, { error: "invalid_client" });
  const params = new URLSearchParams(body);
  if (params.get("grant_type") !== "client_credentials") return send(res, 400, { error: "unsupported_grant_type" });
  const allowed = JSON.parse(row.scopes);
  const scope = params.get("scope") ?? allowed.join(" ");
  if (!scope.split(" ").every((s) => allowed.includes(s))) return send(res, 400, { error: "invalid_scope" });
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ client_id: row.id, scope, roles: JSON.parse(row.roles) })
    .setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: jwk.kid })
    .setIssuer(env.JWT_ISSUER)
    .setSubject(row.id)
    .setAudience(env.JWT_AUDIENCE)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + 900)
    .setJti(randomUUID())
    .sign(signKey);
  send(res, 200, { access_token: jwt, token_type: "Bearer", expires_in: 900, scope });
}

async function patient(req, res, id, audited) {
  const h = req.headers.authorization ?? "";
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(h.slice(7), verifyKey, { algorithms: ["ES256"], issuer: env.JWT_ISSUER, audience: env.JWT_AUDIENCE, clockTolerance: 30 }));
  } catch {
    return send(res, 401, { error: "invalid_token" });
  }
  if (!String(claims.scope).split(" ").includes("phi:read")) return send(res, 403, { error: "insufficient_scope" });
  const head = getHead.get(id);
  if (!head || head.deleted) return send(res, 404, { error: "not_found" });
  const body = unseal(head.sealed, `phi/Patient/${id}/${head.version_id}`);
  if (audited) insertAudit.run(new Date().toISOString(), claims.sub, id, randomUUID());
  send(res, 200, { ...body, resourceType: "Patient", id, meta: { versionId: String(head.version_id), lastUpdated: head.last_updated } }, "application/fhir+json");
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const url = req.url ?? "/";
    const m = /^(\/audited)?\/v1\/phi\/Patient\/([A-Za-z0-9-]{1,64})$/.exec(url);
    const work = req.method === "POST" && url === "/oauth/token" ? token(req, res, Buffer.concat(chunks).toString()) : req.method === "GET" && m ? patient(req, res, m[2], m[1] !== undefined) : (send(res, 404, { error: "not_found" }), undefined);
    work?.catch(() => send(res, 500, { error: "internal" }));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
