import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyChain } from "../../../shared/audit/verify";
import { pendingCount } from "../../../shared/testing/audit";
import { call, card, json, newKey, PAYMENTS_CHAIN, sealAll, type PaymentBody } from "./helpers";

/**
 * Several isolates of payments (four worker instances built from the real bundle) on ONE D1 database and
 * ONE sealer object: 40 concurrent payment creations and their reads all succeed with no contention on
 * the audit trail, each leaves exactly one record, and the one chain seals and verifies.
 */
describe("many isolates, one chain", () => {
  it("40 concurrent payment creations and 40 reads across 4 instances: no 5xx, one record each, all sealed and verified", { timeout: 120_000 }, async () => {
    const instances = [SELF, env.ISO_1, env.ISO_2, env.ISO_3];
    const count = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events").first<number>("n")) ?? 0;
    const before = await count();
    const keys = Array.from({ length: 40 }, () => newKey());
    const created = await Promise.all(
      keys.map((key, i) => call("POST", "/v1/payments", { body: { amount: 500 + i, currency: "usd", card: card() }, key, via: instances[i % 4] })),
    );
    expect(created.map((r) => r.status)).toEqual(created.map(() => 201));
    const payments = await Promise.all(created.map((r) => json<PaymentBody>(r)));
    const reads = await Promise.all(payments.map((p, i) => call("GET", `/v1/payments/${p.id}`, { via: instances[(i + 1) % 4] })));
    expect(reads.map((r) => r.status)).toEqual(reads.map(() => 200));

    const { results } = await env.DB.prepare("SELECT seq, action, resource_id, outcome, request_id FROM audit_events WHERE seq > ? ORDER BY seq")
      .bind(before)
      .all<{ seq: number; action: string; resource_id: string; outcome: string; request_id: string }>();
    expect(results).toHaveLength(80);
    expect(await count()).toBe(before + 80);
    const ids = payments.map((p) => p.id).sort();
    expect(results.filter((r) => r.action === "payment.create").map((r) => r.resource_id).sort()).toEqual(ids);
    expect(results.every((r) => r.outcome === "allowed")).toBe(true);
    expect(new Set(results.map((r) => r.request_id)).size).toBe(80);
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 80 }, (_, i) => (results[0]?.seq ?? 0) + i));
    // One charge per payment: the processor saw each reference once.
    const charges = await env.DB.prepare("SELECT COUNT(DISTINCT reference) AS refs, COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize'").first<{ refs: number; n: number }>();
    expect(charges?.refs).toBe(charges?.n);

    await sealAll();
    expect(await pendingCount(env.DB, PAYMENTS_CHAIN)).toBe(0);
    const verdict = await verifyChain(env.DB, PAYMENTS_CHAIN);
    expect(verdict).toMatchObject({ ok: true, complete: true, pending: 0 });
    expect(verdict.checkpoint?.sealed_up_to).toBe(results.at(-1)?.seq);
  });
});
