// Limit twin of payment creation with an idempotency key (POST /v1/payments, inline card, automatic capture):
// verify the access token (jose, ES256) and its payment:write scope; require an Idempotency-Key; parse the body;
// the same card checks as ours (Luhn, brand prefix and length, expiry); seal the number with AES-256-GCM and
// fingerprint it with HMAC-SHA256 (the vault row); then ONE D1 batch: the idempotency key (stored answer), the
// payment method, the payment, its six ledger lines (authorization and capture, double entry) and an audit record
// (its own table, twin_payment_audit, the columns ours records). A reused key fails the batch on the key's primary
// key (409). No processor round trips, no framework.
import { b64u, bearer, hex, json, unb64u, utf8, verifyToken } from "./common.js";

let keys;

function luhn(d) {
  let sum = 0;
  let dbl = false;
  for (let i = d.length - 1; i >= 0; i--) {
    let n = d.charCodeAt(i) - 48;
    if (dbl && (n *= 2) > 9) n -= 9;
    sum += n;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

function cardOk(card, now) {
  const n = String(card?.number ?? "").replace(/ /g, "");
  if (!/^\d{13,19}$/.test(n) || !luhn(n) || !(n.startsWith("4") && [13, 16, 19].includes(n.length))) return undefined;
  const y = now.getUTCFullYear();
  if (card.exp_year < y || (card.exp_year === y && card.exp_month < now.getUTCMonth() + 1) || card.exp_year > y + 20) return undefined;
  return n;
}

/** The keys themselves are cached, not a promise (as ours): no request awaits another's import. */
async function cryptoKeys(env) {
  if (keys) return keys;
  const [kid, material] = env.CARD_ENCRYPTION_KEYS.split(",")[0].split(":");
  keys = {
    kid,
    aes: await crypto.subtle.importKey("raw", unb64u(material), "AES-GCM", false, ["encrypt"]),
    hmac: await crypto.subtle.importKey("raw", utf8(env.CARD_FINGERPRINT_KEY), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
  };
  return keys;
}

const rand = (prefix) => prefix + b64u(crypto.getRandomValues(new Uint8Array(12)));

export default {
  async fetch(request, env) {
    const claims = await verifyToken(env, bearer(request));
    if (!claims) return json({ error: "invalid_token" }, 401);
    if (!String(claims.scope).split(" ").includes("payment:write")) return json({ error: "insufficient_scope" }, 403);
    const key = request.headers.get("idempotency-key");
    if (!key) return json({ error: "idempotency_key_required" }, 400);
    const body = await request.json();
    const now = new Date();
    const number = cardOk(body.card, now);
    if (!number || !Number.isInteger(body.amount) || body.amount <= 0) return json({ error: "invalid_request" }, 422);
    const k = await cryptoKeys(env);
    const pm = rand("pm_");
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(`payment_methods.number_enc:${pm}`) }, k.aes, utf8(number));
    const fingerprint = hex(await crypto.subtle.sign("HMAC", k.hmac, utf8(`card-fingerprint\u0000${number}`))).slice(0, 32);
    const id = rand("pi_");
    const at = now.toISOString();
    const currency = String(body.currency).toUpperCase();
    const payment = { id, object: "payment", status: "succeeded", amount: body.amount, amount_captured: body.amount, currency, payment_method: pm, created_at: at };
    const answer = JSON.stringify(payment);
    const db = env.DB;
    const lines = [["authorization", "authorized_funds", body.amount], ["authorization", "authorization_obligations", -body.amount], ["capture", "authorized_funds", -body.amount], ["capture", "authorization_obligations", body.amount], ["capture", "processor_receivable", body.amount], ["capture", "revenue", -body.amount]];
    try {
      await db.batch([
        db.prepare("INSERT INTO idempotency_keys (client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at) VALUES (?, ?, '', 'done', 201, ?, ?, ?, ?)")
          .bind(claims.client_id, key, answer, now.getTime(), now.getTime(), now.getTime() + 86_400_000),
        db.prepare("INSERT INTO payment_methods (id, brand, last4, exp_month, exp_year, fingerprint, number_enc, holder_name_enc, created_at, created_by, created_by_client) VALUES (?, 'visa', ?, ?, ?, ?, ?, NULL, ?, ?, ?)")
          .bind(pm, number.slice(-4), body.card.exp_month, body.card.exp_year, fingerprint, `v1.${k.kid}.${b64u(iv)}.${b64u(ct)}`, at, claims.sub, claims.client_id),
        db.prepare("INSERT INTO payments (id, status, amount, amount_captured, amount_refunded, amount_refund_pending, currency, capture_method, payment_method_id, decline_code, processor_ref, description, metadata, version, created_at, updated_at, created_by, created_by_client) VALUES (?, 'succeeded', ?, ?, 0, 0, ?, 'automatic', ?, NULL, ?, NULL, '{}', 1, ?, ?, ?, ?)")
          .bind(id, body.amount, body.amount, currency, pm, rand("ch_twin_"), at, at, claims.sub, claims.client_id),
        db.prepare(`INSERT INTO ledger_lines (entry_id, payment_id, kind, account, currency, amount, actor, request_id, created_at) VALUES ${lines.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}`)
          .bind(...lines.flatMap(([kind, account, amount]) => [`le_${kind}_${id}`, id, kind, account, currency, amount, claims.sub, "twin", at])),
        db.prepare("INSERT INTO twin_payment_audit (at, actor_sub, actor_client, action, payment_id, amount, currency, outcome, request_id) VALUES (?, ?, ?, 'payment.create', ?, ?, ?, 'allowed', ?)")
          .bind(at, claims.sub, claims.client_id, id, body.amount, currency, crypto.randomUUID()),
      ]);
    } catch {
      return json({ error: "idempotency_key_in_use" }, 409);
    }
    return new Response(answer, { status: 201, headers: { "content-type": "application/json" } });
  },
};
