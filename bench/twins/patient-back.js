// Limit twin of the authenticated Patient read, back half (phi's essential work): one D1 select by primary
// key (the same statement as ours), AES-256-GCM decryption of the sealed body under the tenant's data key
// (unwrapped once per isolate, as ours) and the same AAD (`phi/Patient/<id>/<version>`, shared/crypto.ts format
// `v1.<kid>.<iv>.<ct>`), the resource with its meta.
// Variants, by binding:
//   TWIN_AUDIT=batch   + the audit insert in the same D1 batch as the select (what phi does since the
//                        append-and-seal audit, shared/audit/; the twin the issue sets the Patient-read target on)
//   TWIN_AUDIT=insert  + one plain audit insert per read (same columns as phi_audit, own table, no chain)
//   TWIN_AUDIT=chain   + a hash-chained append as phi did before the append-and-seal audit (shared/audit/):
//                        SHA-256 over the canonical row on the head this isolate last wrote, insert seq+1 with
//                        prev_hash guarded in SQL, appends taking turns within the isolate (for comparison only)
//   TWIN_PRINCIPAL=1   + verify the principal header's HMAC and parse it
//   TWIN_EDGE=1        + the per-request duties of the platform's contract behind the gateway, with our own code
//                        (shared/http.ts): the security headers and the request id on the answer, and
//                        http_server_request_duration_seconds (no access line: behind the gateway it is written
//                        only at LOG_LEVEL=debug)
// TWIN_AUDIT_TABLE names the variant's own audit table (two chains in one table would race for the next seq).
import { applySecurityHeaders, finishRequest, incomingRequestId } from "@platform/shared/http";
import { setLogContext } from "@platform/shared/logger";
import { sha256Hex, unb64u, utf8 } from "./common.js";

setLogContext({ service: "phi" });

// Keys as resolved values (plain data), never a promise another request would await.
const keys = new Map();
let hmacKey;
let tail = Promise.resolve();
let head; // { seq, hash } this isolate last wrote

async function platformKeys(secret) {
  if (keys.size > 0) return keys;
  for (const entry of secret.split(",")) {
    const [kid, material] = entry.trim().split(":");
    keys.set(kid, await crypto.subtle.importKey("raw", unb64u(material), "AES-GCM", false, ["decrypt"]));
  }
  return keys;
}

// A tenant's data key (shared/keys/tenant-keys.ts), as ours: read and unwrapped once per isolate, then from memory.
async function dataKey(env, kid) {
  const known = keys.get(kid);
  if (known) return known;
  const ring = await platformKeys(env.PHI_ENCRYPTION_KEYS);
  const row = await env.DB.prepare("SELECT tenant_id, wrapped FROM tenant_keys WHERE kid = ?").bind(kid).first();
  const [, wkid, iv, ct] = row.wrapped.split(".");
  const raw = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64u(iv), additionalData: utf8(`tenant_keys/phi/${row.tenant_id}/${kid}`) }, ring.get(wkid), unb64u(ct));
  const key = await crypto.subtle.importKey("raw", unb64u(new TextDecoder().decode(raw)), "AES-GCM", false, ["decrypt"]);
  keys.set(kid, key);
  return key;
}

async function unseal(env, sealed, aad) {
  const [, kid, iv, ct] = sealed.split(".");
  const key = kid.startsWith("tk_") ? await dataKey(env, kid) : (await platformKeys(env.PHI_ENCRYPTION_KEYS)).get(kid);
  const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64u(iv), additionalData: utf8(aad) }, key, unb64u(ct));
  return JSON.parse(new TextDecoder().decode(pt));
}

function auditRow(sub, id) {
  return {
    at: new Date().toISOString(), actor_sub: sub, actor_client: sub, actor_roles: "", token_id: "", action: "read",
    resource_type: "Patient", resource_id: id, patient_ids: id, outcome: "success", reason: "", purpose_of_use: "unspecified",
    client_ip: "unknown", request_id: crypto.randomUUID(), trace_id: "",
  };
}

const canonical = (row) => "{" + Object.keys(row).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(row[k])}`).join(",") + "}";

async function audit(db, mode, table, row) {
  const names = Object.keys(row);
  if (mode === "insert") {
    const hash = await sha256Hex(canonical(row));
    await db.prepare(`INSERT INTO ${table} (hash, ${names.join(", ")}) VALUES (?${", ?".repeat(names.length)})`).bind(hash, ...Object.values(row)).run();
    return;
  }
  const cols = `(seq, prev_hash, hash, ${names.join(", ")})`;
  const rest = ", ?".repeat(names.length);
  const run = tail.then(async () => {
    for (let attempt = 0; ; attempt++) {
      const cached = head;
      const last = cached ?? (await db.prepare(`SELECT seq, hash FROM ${table} ORDER BY seq DESC LIMIT 1`).first());
      const seq = (last?.seq ?? 0) + 1;
      const prev = last?.hash ?? "0".repeat(64);
      const hash = await sha256Hex(`${prev}\n${canonical({ ...row, seq })}`);
      const insert = cached
        ? db.prepare(`INSERT INTO ${table} ${cols} VALUES (?, (SELECT hash FROM ${table} WHERE seq = ? AND hash = ?), ?${rest})`).bind(seq, cached.seq, cached.hash, hash, ...Object.values(row))
        : db.prepare(`INSERT INTO ${table} ${cols} VALUES (?, ?, ?${rest})`).bind(seq, prev, hash, ...Object.values(row));
      try {
        await insert.run();
        head = { seq, hash };
        return;
      } catch (err) {
        head = undefined;
        if (attempt >= 3) throw err;
      }
    }
  });
  tail = run.catch(() => undefined);
  await run;
}

export default {
  async fetch(request, env, ctx) {
    if (env.TWIN_EDGE !== "1") return read(request, env);
    const start = performance.now();
    const requestId = incomingRequestId(request.headers.get("x-request-id"));
    const res = await read(request, env);
    applySecurityHeaders(res.headers);
    res.headers.set("x-request-id", requestId);
    finishRequest("phi", "debug", env, ctx, { requestId, headers: request.headers, method: request.method, route: "/Patient/:id", status: res.status, seconds: (performance.now() - start) / 1000 });
    return res;
  },
};

async function read(request, env) {
  if (env.TWIN_PRINCIPAL === "1") {
    const [payload, mac] = (request.headers.get("x-gateway-principal") ?? "").split(".");
    hmacKey ??= await crypto.subtle.importKey("raw", utf8(env.GATEWAY_HMAC_KEY), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    if (!payload || !mac || !(await crypto.subtle.verify("HMAC", hmacKey, unb64u(mac), utf8(payload)))) return new Response(null, { status: 401 });
    JSON.parse(new TextDecoder().decode(unb64u(payload)));
  }
  const id = new URL(request.url).pathname.split("/").pop();
  const select = env.DB.prepare(
    "SELECT resource_type, id, version_id, last_updated, deleted, sealed, patient_id FROM resource_versions WHERE resource_type = ? AND id = ? ORDER BY version_id DESC LIMIT 1",
  ).bind("Patient", id);
  let head;
  if (env.TWIN_AUDIT === "batch") {
    const row = auditRow(request.headers.get("x-sub") ?? "", id);
    const names = Object.keys(row);
    const insert = env.DB.prepare(`INSERT INTO ${env.TWIN_AUDIT_TABLE} (${names.join(", ")}) VALUES (?${", ?".repeat(names.length - 1)})`).bind(...Object.values(row));
    const [found] = await env.DB.batch([select, insert]);
    head = found.results[0];
  } else {
    head = await select.first();
  }
  if (!head || head.deleted) return new Response(null, { status: 404 });
  const body = await unseal(env, head.sealed, `phi/Patient/${id}/${head.version_id}`);
  if (env.TWIN_AUDIT && env.TWIN_AUDIT !== "batch") await audit(env.DB, env.TWIN_AUDIT, env.TWIN_AUDIT_TABLE, auditRow(request.headers.get("x-sub") ?? "", id));
  const resource = { ...body, resourceType: "Patient", id, meta: { versionId: String(head.version_id), lastUpdated: head.last_updated } };
  return new Response(JSON.stringify(resource), { headers: { "content-type": "application/fhir+json", etag: `W/"${head.version_id}"` } });
}
