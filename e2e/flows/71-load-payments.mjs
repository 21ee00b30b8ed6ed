// Load without loss, payments: LOAD_PAYMENTS (50) identical payment creations (same Idempotency-Key, same
// body) sent at once give exactly one charge. Per Stripe's rules each answer is the payment (201, or 201
// replayed) or 409 idempotency_in_flight, which the client retries after Retry-After until it gets the
// stored answer. Afterwards: one payment for the key, one set of ledger entries, one allowed create record.
export const name = "load: concurrent identical payments, exactly one charge";

const COUNT = Number(process.env.LOAD_PAYMENTS ?? 50);
const DEADLINE_MS = Number(process.env.LOAD_PAYMENTS_DEADLINE_MS ?? 120_000);
const YEAR = new Date().getUTCFullYear() + 2;
const DAY_MS = 24 * 3600 * 1000;
/** This flow's currency: no other flow uses it, so the ledger's movements in it are ours. */
const CURRENCY = "chf";

const seconds = (t0) => ((performance.now() - t0) / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export default async function (ctx) {
  const { assert } = ctx;
  const t0 = performance.now();
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const billing = await ctx.createClient({ name: "e2e load billing", roles: ["billing"] });
  const token = await ctx.clientToken(billing.client_id, billing.client_secret, "payment:read payment:write");
  const auditor = await ctx.token("audit:read");

  const pm = await ctx.json("/v1/payments/payment-methods", {
    method: "POST",
    token,
    body: { number: "4242 4242 4242 4242", exp_month: 12, exp_year: YEAR, cvc: "123" },
    headers: { "idempotency-key": `e2e-load-pm-${tag}` },
  });
  assert.equal(pm.status, 201, JSON.stringify(pm.body));

  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const ledger = async () => {
    const r = await ctx.json(`/v1/payments/ledger/daily?from=${day(Date.now() - DAY_MS)}&to=${day(Date.now() + DAY_MS)}`, { token: auditor });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const out = {};
    for (const row of r.body.data.filter((x) => x.currency === CURRENCY.toUpperCase())) {
      const k = (out[row.kind] ??= { entries: 0, debits: 0, credits: 0 });
      k.entries += row.entries;
      k.debits += row.debits;
      k.credits += row.credits;
    }
    return out;
  };
  const before = await ledger();
  const since = new Date(Date.now() - 1000).toISOString();

  // All at once over their own connections (the pool is as wide as the burst).
  const amount = 4321;
  const body = { amount, currency: CURRENCY, payment_method: pm.body.id, capture: "automatic", description: `e2e load ${tag}` };
  const key = `e2e-load-pay-${tag}`;
  const pool = ctx.pool(COUNT, { timeoutMs: 60_000, deadlineMs: DEADLINE_MS });
  const firstStatuses = [];
  let inFlightRetries = 0;
  const tBurst = performance.now();
  let answers;
  try {
    answers = await Promise.all(
      Array.from({ length: COUNT }, async (_, i) => {
        // The request carries its key, so a network-error retry is safe too.
        for (let attempt = 1; ; attempt++) {
          const r = await pool.json("/v1/payments", { method: "POST", token, body, headers: { "idempotency-key": key }, retry: 2 });
          if (attempt === 1) firstStatuses[i] = r.status;
          if (r.status !== 409) return r;
          assert.equal(r.body.code, "idempotency_in_flight", JSON.stringify(r.body));
          assert.equal(r.headers["retry-after"], "1");
          assert.ok(attempt < 30, "still in flight after 30 retries");
          inFlightRetries++;
          await sleep(Number(r.headers["retry-after"]) * 1000);
        }
      }),
    );
  } finally {
    pool.close();
  }
  const burstSeconds = seconds(tBurst);
  const first = tally(firstStatuses);
  for (const r of answers) assert.equal(r.status, 201, JSON.stringify(r.body));
  const id = answers[0].body.id;
  for (const r of answers) assert.deepEqual(r.body, answers[0].body, "every answer is the same payment");
  const fresh = answers.filter((r) => r.headers["idempotent-replayed"] !== "true");
  assert.equal(fresh.length, 1, `answers not marked as replays: ${fresh.length}`);
  assert.equal(answers[0].body.status, "succeeded");
  ctx.log(
    `${COUNT} identical requests in ${burstSeconds}s: first answers ${JSON.stringify(first)} ` +
      `(409 = in flight, retried ${inFlightRetries} times after Retry-After), then all 201 with payment ${id.slice(0, 6)}..., 1 fresh and ${COUNT - 1} replays, ` +
      `peak ${pool.stats.peak} on the wire, ${pool.stats.retries} network retries (${pool.stats.proxyLost} lost by the dev proxy)`,
  );

  // Exactly one payment with this description since the burst began.
  const listed = [];
  for (let cursor, pages = 0; pages === 0 || cursor; pages++) {
    assert.ok(pages < 50, "payment paging did not end");
    const r = await ctx.json(`/v1/payments?created_gte=${encodeURIComponent(since)}&limit=100${cursor ? `&cursor=${cursor}` : ""}`, { token });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    listed.push(...r.body.data);
    cursor = r.body.next_cursor;
  }
  const ours = listed.filter((p) => p.description === body.description);
  assert.deepEqual(ours.map((p) => p.id), [id], "exactly one payment for the key");

  // One set of ledger entries: one authorization and one capture, for the amount, in this flow's currency.
  const after = await ledger();
  const delta = {};
  for (const kind of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const a = after[kind] ?? { entries: 0, debits: 0, credits: 0 };
    const b = before[kind] ?? { entries: 0, debits: 0, credits: 0 };
    delta[kind] = { entries: a.entries - b.entries, debits: a.debits - b.debits, credits: a.credits - b.credits };
  }
  assert.deepEqual(
    Object.fromEntries(Object.entries(delta).filter(([, d]) => d.entries !== 0)),
    {
      authorization: { entries: 1, debits: delta.authorization?.debits, credits: delta.authorization?.credits },
      capture: { entries: 1, debits: delta.capture?.debits, credits: delta.capture?.credits },
    },
    `ledger movements in ${CURRENCY}: ${JSON.stringify(delta)}`,
  );
  for (const kind of ["authorization", "capture"]) {
    assert.equal(delta[kind].debits, delta[kind].credits, `${kind} entry is balanced`);
    assert.ok(delta[kind].debits >= amount, `${kind} entry moves the amount`);
  }
  const balance = await ctx.json("/v1/payments/ledger/balance", { token: auditor });
  assert.equal(balance.body.balanced, true);

  // The audit trail: one allowed create (the charge), one replay record per replayed answer.
  const trail = await ctx.json(`/v1/payments/audit?resource_id=${id}&action=payment.create&limit=200`, { token: auditor });
  assert.equal(trail.status, 200);
  const outcomes = tally(trail.body.data.map((r) => `${r.outcome}:${r.code ?? ""}`));
  assert.deepEqual(outcomes, { "allowed:": 1, "allowed:idempotent_replay": COUNT - 1 }, JSON.stringify(outcomes));
  const verify = await ctx.json("/v1/payments/audit/verify", { token: auditor });
  assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
  ctx.log(
    `one payment, ledger +1 authorization +1 capture (${CURRENCY.toUpperCase()}, balanced), audit ${JSON.stringify(outcomes)}, ` +
      `chain of ${verify.body.records} verified; total ${seconds(t0)}s`,
  );
}

function tally(values) {
  const out = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
