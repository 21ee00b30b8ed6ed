// Payments through the gateway: tokenize, pay, capture, a refund held for approval and released by a
// second client (self-approval refused), an idempotent replay, then ledger and audit checks.
export const name = "payments: tokenize, pay, capture, maker-checker refund, idempotent replay";

const YEAR = new Date().getUTCFullYear() + 2;
let seq = 0;
const key = (label) => `e2e-${label}-${Date.now()}-${seq++}`;

export default async function (ctx) {
  const { assert } = ctx;
  const maker = await ctx.createClient({ name: "e2e billing maker", roles: ["billing"], scopes: ["payment:approve"] });
  const checker = await ctx.createClient({ name: "e2e billing checker", scopes: ["payment:read", "payment:approve"] });
  const makerToken = await ctx.clientToken(maker.client_id, maker.client_secret, "payment:read payment:write payment:refund payment:approve");
  const checkerToken = await ctx.clientToken(checker.client_id, checker.client_secret, "payment:read payment:approve");
  const post = (path, body, token, k = key("op")) => ctx.json(path, { method: "POST", token, body, headers: { "idempotency-key": k } });

  const pm = await post("/v1/payments/payment-methods", { number: "4242 4242 4242 4242", exp_month: 12, exp_year: YEAR, cvc: "123" }, makerToken);
  assert.equal(pm.status, 201, JSON.stringify(pm.body));
  assert.equal(pm.body.last4, "4242");
  assert.ok(!JSON.stringify(pm.body).includes("4242424242424242"));

  // Payment creation latency through the gateway (median of 15).
  const times = [];
  let payment;
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    const res = await post("/v1/payments", { amount: 80_000, currency: "usd", payment_method: pm.body.id, capture: "manual" }, makerToken);
    times.push(performance.now() - t0);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    payment = res.body;
  }
  times.sort((a, b) => a - b);
  ctx.log(`payment creation through the gateway: median ${times[7].toFixed(1)} ms (n=15)`);
  assert.equal(payment.status, "requires_capture");

  const cap = await post(`/v1/payments/${payment.id}/capture`, { amount: 75_000 }, makerToken);
  assert.equal(cap.status, 200, JSON.stringify(cap.body));
  assert.equal(cap.body.amount_captured, 75_000);

  const refund = await post(`/v1/payments/${payment.id}/refunds`, { amount: 60_000, reason: "customer complaint" }, makerToken);
  assert.equal(refund.status, 201, JSON.stringify(refund.body));
  assert.equal(refund.body.status, "pending_approval");

  const self = await post(`/v1/payments/refunds/${refund.body.id}/approve`, {}, makerToken);
  assert.equal(self.status, 403);
  assert.equal(self.body.code, "self_approval_forbidden");
  const approved = await post(`/v1/payments/refunds/${refund.body.id}/approve`, {}, checkerToken);
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  assert.equal(approved.body.approved_by, checker.client_id);
  const after = await ctx.json(`/v1/payments/${payment.id}`, { token: makerToken });
  assert.equal(after.body.status, "partially_refunded");
  assert.equal(after.body.amount_refunded, 60_000);

  // The same key and body replays the first answer; another body with it is 422.
  const k = key("replay");
  const body = { amount: 1234, currency: "eur", payment_method: pm.body.id };
  const first = await post("/v1/payments", body, makerToken, k);
  const again = await post("/v1/payments", body, makerToken, k);
  assert.equal(first.status, 201);
  assert.equal(again.status, 201);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.deepEqual(again.body, first.body);
  assert.equal((await post("/v1/payments", { ...body, amount: 1 }, makerToken, k)).status, 422);
  assert.equal((await ctx.json("/v1/payments", { method: "POST", token: makerToken, body })).status, 400);

  // A decline and the scope wall at the gateway.
  const declined = await post("/v1/payments", { amount: 100, currency: "usd", card: { number: "4000000000000002", exp_month: 1, exp_year: YEAR, cvc: "123" } }, makerToken);
  assert.equal(declined.status, 402);
  assert.equal(declined.body.code, "card_declined");
  assert.equal((await ctx.json("/v1/payments/ledger/balance", { token: makerToken })).status, 403);

  const auditor = await ctx.token("audit:read");
  const balance = await ctx.json("/v1/payments/ledger/balance", { token: auditor });
  assert.equal(balance.status, 200);
  assert.equal(balance.body.balanced, true);
  const verify = await ctx.json("/v1/payments/audit/verify", { token: auditor });
  assert.equal(verify.body.ok, true);
  const trail = await ctx.json(`/v1/payments/audit?resource_id=${refund.body.id}`, { token: auditor });
  assert.deepEqual(
    trail.body.data.map((r) => [r.action, r.outcome, r.actor_sub]),
    [
      ["refund.request", "allowed", maker.client_id],
      ["refund.approve", "denied", maker.client_id],
      ["refund.approve", "allowed", checker.client_id],
    ],
  );
}
