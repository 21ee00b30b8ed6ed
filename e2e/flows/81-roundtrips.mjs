// D1 round trips per operation, counted from the platform's own traces (not guessed): for one request of each
// kind, the D1 spans of its trace per worker give the statements it ran and the sequential waves they took.
// A span that starts before the spans of the current wave have all ended ran beside them (one batch, or a
// Promise.all); one that starts after they ended waited for them: a new wave. The gateway's revocation view may
// refresh in the background of any request (its own waitUntil, not on the answer's path): that refresh is
// counted apart. Each isolate exports its batch from a later request's waitUntil once the batch is due, so
// while it waits the flow keeps light requests going to every worker it reads spans from.
export const name = "round trips: D1 statements and sequential waves per operation, from the traces";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isD1 = (s) => s.attributes["db.system"] === "Cloudflare D1" || s.attributes["db.system.name"] === "Cloudflare D1";
// The revocation view refresh (revoked tokens, disabled clients, tenant token cut-offs) runs in a waitUntil of whichever request finds it due.
const statementOf = (s) => String(s.attributes["db.statement"] ?? s.attributes["db.query.text"] ?? "");
const isViewRefresh = (s) => /revoked_tokens|disabled_at|tokens_not_before/.test(statementOf(s));
// A tenant's data key is read once per isolate (shared/keys/tenant-keys.ts), then cached: counted apart too.
const isKeyLoad = (s) => /tenant_keys/.test(statementOf(s));

/** Light requests that give each worker's isolate a request to flush its due batch from. */
async function nudge(ctx, tok) {
  await Promise.all([
    ctx.fetch("/health"),
    ctx.fetch("/v1/phi/metadata"),
    ctx.json("/v1/payments/pi_roundtrip_nudge", { token: tok }),
  ]);
}

async function traceOf(ctx, tok, receiver, requestId) {
  for (let i = 0; i < 80; i++) {
    await nudge(ctx, tok);
    const line = receiver.state.logs.find((l) => l.service === "auth" && l.attributes.request_id === requestId);
    if (line) return line.traceId;
    await sleep(250);
  }
  throw new Error(`no gateway log line for request ${requestId}`);
}

/** Sequential waves: a span that starts before every span of the current wave has ended ran beside them. */
function waves(spans) {
  let n = 0;
  let end = -1n;
  for (const s of [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    if (s.start >= end) {
      n++;
      end = s.end;
    } else if (s.end > end) end = s.end;
  }
  return n;
}

/** Statements and waves per worker in one trace, once its spans have stopped arriving. */
async function countTrace(ctx, tok, receiver, traceId) {
  // Each isolate sends at most one batch a second: done when nothing new has come for 3 s.
  let seen = -1;
  let stable = 0;
  for (let i = 0; i < 60 && stable < 6; i++) {
    await nudge(ctx, tok);
    const n = receiver.state.spans.filter((s) => s.traceId === traceId).length;
    stable = n > 0 && n === seen ? stable + 1 : 0;
    seen = n;
    await sleep(500);
  }
  const out = {};
  for (const s of receiver.state.spans.filter((x) => x.traceId === traceId && isD1(x))) {
    const key = isViewRefresh(s) ? `${s.service} (view refresh)` : isKeyLoad(s) ? `${s.service} (tenant key load)` : s.service;
    (out[key] ??= []).push({ start: BigInt(s.start), end: BigInt(s.end) });
  }
  return Object.fromEntries(Object.entries(out).map(([k, spans]) => [k, { statements: spans.length, waves: waves(spans) }]));
}

export default async function (ctx) {
  const { assert, receiver } = ctx;
  assert.ok(receiver, "the e2e runner provides an OTLP receiver");
  const tok = await ctx.token("phi:read phi:write payment:read payment:write");
  // Warm the gateway's revocation view and the tenant's data keys in phi and payments, so the counted requests are the steady state.
  await ctx.json("/v1/phi/Patient?_count=1", { token: tok });
  const YEAR = new Date().getUTCFullYear() + 2;
  const card = { number: "4242424242424242", exp_month: 12, exp_year: YEAR, cvc: "123" };
  const warm = await ctx.json("/v1/payments", { method: "POST", token: tok, headers: { "idempotency-key": `rt-warm-${Date.now()}` }, body: { amount: 100, currency: "usd", card } });
  assert.equal(warm.status, 201, `warm-up payment: ${warm.status}`);

  const measure = async (what, send) => {
    const res = await send();
    assert.ok(res.status < 300, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
    const rid = res.headers.get("x-request-id");
    assert.ok(rid, `${what}: the answer names its request id`);
    const counts = await countTrace(ctx, tok, receiver, await traceOf(ctx, tok, receiver, rid));
    ctx.log(`${what}: ${JSON.stringify(counts)}`);
    return { res, counts };
  };
  const waves = (counts, service) => counts[service]?.waves ?? 0;

  const token = await measure("token issuance", () =>
    ctx.json("/oauth/token", {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${ctx.creds.id}:${ctx.creds.secret}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&scope=phi%3Aread",
    }),
  );
  assert.equal(waves(token.counts, "auth"), 1, "token issuance: one D1 wave");

  const create = await measure("Patient create", () =>
    ctx.json("/v1/phi/Patient", { method: "POST", token: tok, headers: { "content-type": "application/fhir+json" }, body: { resourceType: "Patient", name: [{ family: "Roundtrip" }] } }),
  );
  assert.equal(waves(create.counts, "auth"), 0, "Patient create: no D1 wave at the gateway");
  assert.equal(waves(create.counts, "phi"), 1, "Patient create: one D1 wave in phi");

  const read = await measure("Patient read", () => ctx.json(`/v1/phi/Patient/${create.res.body.id}`, { token: tok }));
  assert.equal(waves(read.counts, "auth"), 0, "Patient read: no D1 wave at the gateway");
  assert.equal(waves(read.counts, "phi"), 1, "Patient read: one D1 wave in phi");

  const payKey = `rt-${Date.now()}`;
  const payOnce = () => ctx.json("/v1/payments", { method: "POST", token: tok, headers: { "idempotency-key": payKey }, body: { amount: 1_250, currency: "usd", card } });
  const pay = await measure("payment creation", payOnce);
  assert.equal(waves(pay.counts, "auth"), 0, "payment creation: no D1 wave at the gateway");
  // The simulated processor decides before the key is claimed, so the claim (the key inserted already answered),
  // the processor's record, the payment, its ledger lines and the audit record are one batch; a live key fails it and
  // a duplicate costs 2 (workers/payments/README.md; a remote processor is called after a claim of its own: 2).
  assert.equal(waves(pay.counts, "payments"), 1, `payment creation: 1 D1 wave, got ${waves(pay.counts, "payments")}`);
  // The same request again: the batch fails on the live key, then the claim reads the key's row (the replay) and
  // writes the duplicate's audit record in one batch.
  const replay = await measure("payment replay", payOnce);
  assert.equal(replay.res.headers.get("idempotent-replayed"), "true", "payment replay: a replay");
  assert.equal(waves(replay.counts, "payments"), 2, `payment replay: 2 D1 waves, got ${waves(replay.counts, "payments")}`);
}
