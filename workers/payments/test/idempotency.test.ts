import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { countD1 } from "../../auth/test/d1-count";
import { auditInsert } from "../../../shared/audit/append";
import { claimKey, completeStatement, IDEMPOTENCY_TTL_MS, IN_FLIGHT_LOCK_MS, PRUNE_BATCH, requestHash, storedKey, type DuplicateRecord } from "../src/idempotency";
import { duplicateColumns, outcomeOf, outcomeSql, replayedIdSql, replayedResourceId } from "../src/audit";
import worker from "../src/index";
import { SimulatedProcessor } from "../src/processor/simulated";
import { ALL_SCOPES, BASE, call, card, CARDS, json, newKey, pay, type PaymentBody } from "./helpers";

const count = async (sql: string) => (await env.DB.prepare(sql).first<{ n: number }>())?.n ?? 0;

describe("idempotency keys", () => {
  it("requires a key of 1-255 printable characters on every POST", async () => {
    const body = { amount: 100, currency: "usd", card: card() };
    const none = await call("POST", "/v1/payments", { body, key: null });
    expect(none.status).toBe(400);
    expect(JSON.stringify(await json(none))).toContain("idempotency-key");
    expect((await call("POST", "/v1/payments", { body, key: "x".repeat(256) })).status).toBe(400);
    expect((await call("POST", "/v1/payments", { body, key: "has space" })).status).toBe(400);
    expect((await call("POST", "/v1/payments", { body, key: "k".repeat(255) })).status).toBe(201);
    expect((await call("POST", "/v1/payments/pi_whateverwhatever/void", { key: null })).status).toBe(400);
  });

  it("replays the first answer byte for byte, with a replay header, and charges once", async () => {
    const body = { amount: 4200, currency: "usd", card: card(), metadata: { order: "A-1" } };
    const first = await call("POST", "/v1/payments", { body, key: "replay-1" });
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const text = await first.text();
    // Same body with keys in another order is the same request.
    const reordered = { metadata: { order: "A-1" }, card: card(), currency: "usd", amount: 4200 };
    const second = await call("POST", "/v1/payments", { body: reordered, key: "replay-1" });
    expect(second.status).toBe(201);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(await second.text()).toBe(text);
    const id = (JSON.parse(text) as PaymentBody).id;
    expect(await count(`SELECT COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize' AND reference = '${id}'`)).toBe(1);
    const audit = await env.DB.prepare("SELECT outcome, code FROM audit_events WHERE resource_id = ? ORDER BY seq").bind(id).all();
    expect(audit.results).toEqual([
      { outcome: "allowed", code: null },
      { outcome: "allowed", code: "idempotent_replay" },
    ]);
  });

  it("answers 422 for the same key with another body or on another route", async () => {
    await call("POST", "/v1/payments", { body: { amount: 100, currency: "usd", card: card() }, key: "mismatch-1" });
    const other = await call("POST", "/v1/payments", { body: { amount: 101, currency: "usd", card: card() }, key: "mismatch-1" });
    expect(other.status).toBe(422);
    expect((await json(other)).code).toBe("idempotency_key_reused");
    const route = await call("POST", "/v1/payments/payment-methods", { body: card(), key: "mismatch-1" });
    expect(route.status).toBe(422);
  });

  it("scopes keys to the client: another client's same key is a new request", async () => {
    const body = { amount: 100, currency: "usd", card: card() };
    const a = await json<PaymentBody>(await call("POST", "/v1/payments", { body, key: "shared-key" }));
    const res = await call("POST", "/v1/payments", { body, key: "shared-key", caller: { sub: "cli_other" } });
    expect(res.status).toBe(201);
    expect(res.headers.get("idempotent-replayed")).toBeNull();
    expect((await json<PaymentBody>(res)).id).not.toBe(a.id);
  });

  it("replays a stored refusal too (Stripe stores what the endpoint answered)", async () => {
    const key = "refusal-1";
    const r1 = await call("POST", "/v1/payments/pi_doesnotexist12/capture", { key });
    expect(r1.status).toBe(404);
    const r2 = await call("POST", "/v1/payments/pi_doesnotexist12/capture", { key });
    expect(r2.status).toBe(404);
    expect(r2.headers.get("idempotent-replayed")).toBe("true");
  });

  it("50 concurrent identical requests with one key make exactly one payment and one charge", async () => {
    const body = { amount: 5050, currency: "usd", card: card(), description: "concurrency" };
    const before = await count("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize'");
    const responses = await Promise.all(Array.from({ length: 50 }, () => call("POST", "/v1/payments", { body, key: "fifty" })));
    const statuses = responses.map((r) => r.status);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    const fresh = responses.filter((r) => r.status === 201 && r.headers.get("idempotent-replayed") === null);
    expect(fresh).toHaveLength(1);
    for (const r of responses.filter((x) => x.status === 409)) {
      expect(r.headers.get("retry-after")).toBe("1");
      expect(await json(r)).toMatchObject({ code: "idempotency_in_flight", retryable: true });
    }
    const ids = new Set(await Promise.all(responses.filter((r) => r.status === 201).map(async (r) => (await json<PaymentBody>(r)).id)));
    expect(ids.size).toBe(1);
    expect(await count("SELECT COUNT(*) AS n FROM payments WHERE description = 'concurrency'")).toBe(1);
    expect(await count("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize'")).toBe(before + 1);
    // After the first finished, the key replays.
    const later = await call("POST", "/v1/payments", { body, key: "fifty" });
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect((await json<PaymentBody>(later)).id).toBe([...ids][0]);
  }, 60_000);

  it("claims atomically: a second claim while in flight is 409; an abandoned or expired one can be taken over", async () => {
    const now = Date.now();
    const first = await claimKey(env.DB, "ten_default", "cli_unit", "k1", "h1", now);
    expect(first.kind).toBe("claimed");
    await expect(claimKey(env.DB, "ten_default", "cli_unit", "k1", "h1", now + 10)).rejects.toMatchObject({ status: 409, code: "idempotency_in_flight" });
    await expect(claimKey(env.DB, "ten_default", "cli_unit", "k1", "h2", now + 10)).rejects.toMatchObject({ status: 422 });
    expect((await claimKey(env.DB, "ten_default", "cli_unit", "k1", "h1", now + IN_FLIGHT_LOCK_MS + 1)).kind).toBe("claimed");
    await env.DB.prepare("UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = '{}' WHERE key = 'k1'").run();
    expect((await claimKey(env.DB, "ten_default", "cli_unit", "k1", "h1", now + 1000)).kind).toBe("replay");
    // Kept 24 h, then the key is free again.
    expect((await claimKey(env.DB, "ten_default", "cli_unit", "k1", "other", now + IN_FLIGHT_LOCK_MS + 1 + IDEMPOTENCY_TTL_MS)).kind).toBe("claimed");
  });

  it("the hourly cron deletes keys past their 24 h, in batches, and nothing else", async () => {
    const handler = worker as Required<Pick<ExportedHandler<Env>, "scheduled">>;
    const runCron = async (at: number) => {
      const ctx = createExecutionContext();
      await handler.scheduled(createScheduledController({ scheduledTime: at, cron: "17 * * * *" }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    const t0 = Date.now() + 10 * IDEMPOTENCY_TTL_MS; // later than any key the other tests made
    const keyRows = async (client: string) =>
      (await env.DB.prepare("SELECT key FROM idempotency_keys WHERE client_id = ? ORDER BY key").bind(client).all<{ key: string }>()).results.map((r) => r.key);
    // An answered key made at t0, one made an hour later, and one still in flight.
    const old = await claimKey(env.DB, "ten_default", "cli_prune", "old", "h", t0);
    if (old.kind !== "claimed") throw new Error("expected a claim");
    await completeStatement(env.DB, old.claim, 201, "{}").run();
    await claimKey(env.DB, "ten_default", "cli_prune", "newer", "h", t0 + 3_600_000);
    // 2.5 batches of expired keys, all made at t0.
    const many = Math.floor(PRUNE_BATCH * 2.5);
    const insert = env.DB.prepare(
      "INSERT INTO idempotency_keys (tenant_id, client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at) VALUES ('ten_default', 'cli_prune_bulk', ?, 'h', 'done', 201, '{}', ?, ?, ?)",
    );
    for (let i = 0; i < many; i += 500) {
      await env.DB.batch(Array.from({ length: Math.min(500, many - i) }, (_, j) => insert.bind(`k${i + j}`, t0, t0 + IN_FLIGHT_LOCK_MS, t0 + IDEMPOTENCY_TTL_MS)));
    }
    const otherRows = await count("SELECT COUNT(*) AS n FROM payments") + (await count("SELECT COUNT(*) AS n FROM audit_events"));

    // Before the 24 h are over, nothing goes.
    await runCron(t0 + IDEMPOTENCY_TTL_MS - 1);
    expect(await keyRows("cli_prune")).toEqual(["newer", "old"]);
    expect(await count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE client_id = 'cli_prune_bulk'")).toBe(many);
    // Once they are, the keys of t0 go (all of them, over several batches); the later one stays.
    await runCron(t0 + IDEMPOTENCY_TTL_MS);
    expect(await keyRows("cli_prune")).toEqual(["newer"]);
    expect(await count("SELECT COUNT(*) AS n FROM idempotency_keys WHERE client_id = 'cli_prune_bulk'")).toBe(0);
    // Payments and their audit trail are untouched.
    expect(await count("SELECT COUNT(*) AS n FROM payments") + (await count("SELECT COUNT(*) AS n FROM audit_events"))).toBe(otherRows);
    // A pruned key is free, as an expired one always was: the same key claims anew.
    expect((await claimKey(env.DB, "ten_default", "cli_prune", "old", "another", t0 + IDEMPOTENCY_TTL_MS + 1)).kind).toBe("claimed");
  });
});

describe("the processor's record in the claim's batch", () => {
  const book = async (reference: string) =>
    (await env.DB.prepare("SELECT operation, outcome FROM processor_operations WHERE reference = ? OR reference IN (SELECT processor_ref FROM payments WHERE id = ?) ORDER BY operation").bind(reference, reference).all<{ operation: string; outcome: string }>()).results;
  const sale = (reference: string, number: string = CARDS.visa) =>
    new SimulatedProcessor(env.DB, "ten_default").stage("sale", { reference, amount: 300, currency: "USD", card: { number, expMonth: 12, expYear: new Date().getUTCFullYear() + 2 } }, new Date());

  it("is written exactly when the claim takes: never for a duplicate in flight, a mismatch or a replay", async () => {
    const now = Date.now();
    const first = sale("pi_staged_first");
    expect((await claimKey(env.DB, "ten_default", "cli_staged", "s1", "h1", now, first.record)).kind).toBe("claimed");
    const ops = (await env.DB.prepare("SELECT operation, outcome FROM processor_operations WHERE reference = ?").bind("pi_staged_first").all()).results;
    expect(ops).toEqual([{ operation: "authorize", outcome: "approved" }]);
    expect(first.result.approved).toBe(true);
    if (first.result.approved) {
      const capture = await env.DB.prepare("SELECT outcome FROM processor_operations WHERE operation = 'capture' AND reference = ?").bind(first.result.processorRef).all();
      expect(capture.results).toEqual([{ outcome: "ok" }]);
    }
    await expect(claimKey(env.DB, "ten_default", "cli_staged", "s1", "h1", now + 10, sale("pi_staged_dup").record)).rejects.toMatchObject({ status: 409 });
    await expect(claimKey(env.DB, "ten_default", "cli_staged", "s1", "h2", now + 10, sale("pi_staged_other").record)).rejects.toMatchObject({ status: 422 });
    await env.DB.prepare("UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = '{}' WHERE client_id = 'cli_staged'").run();
    expect((await claimKey(env.DB, "ten_default", "cli_staged", "s1", "h1", now + 20, sale("pi_staged_replay").record)).kind).toBe("replay");
    for (const ref of ["pi_staged_dup", "pi_staged_other", "pi_staged_replay"]) expect(await book(ref), ref).toEqual([]);
    // An abandoned claim taken over is a claim: its record is written.
    await env.DB.prepare("UPDATE idempotency_keys SET state = 'in_flight' WHERE client_id = 'cli_staged'").run();
    expect((await claimKey(env.DB, "ten_default", "cli_staged", "s1", "h1", now + IN_FLIGHT_LOCK_MS + 1, sale("pi_staged_takeover").record)).kind).toBe("claimed");
    expect((await book("pi_staged_takeover")).map((r) => r.operation)).toEqual(["authorize"]);
  });

  const send = (db: D1Database, body: unknown, key = newKey(), requestId = crypto.randomUUID()) => sendTo(db, "/v1/payments", body, key, requestId);
  const sendTo = async (db: D1Database, path: string, body: unknown, key = newKey(), requestId = crypto.randomUUID()) => {
    const headers = {
      ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, { sub: "cli_maker", scopes: ALL_SCOPES, roles: ["billing"] })),
      "content-type": "application/json",
      "idempotency-key": key,
      "x-request-id": requestId,
    };
    const ctx = createExecutionContext();
    const res = await worker.fetch?.(new Request(`${BASE}${path}`, { method: "POST", headers, body: JSON.stringify(body) }), { ...env, DB: db }, ctx);
    await waitOnExecutionContext(ctx);
    if (!res) throw new Error("no response");
    return res;
  };
  /** The key as payments stores it, and the row under it. */
  const keyRow = async (key: string) => {
    const stored = await storedKey(env.CARD_FINGERPRINT_KEY, key);
    const row = await env.DB.prepare("SELECT state, response_status FROM idempotency_keys WHERE tenant_id = 'ten_default' AND client_id = 'cli_maker' AND key = ?").bind(stored).first();
    return { stored, row };
  };
  const payments = () => count("SELECT COUNT(*) AS n FROM payments");
  const sales = () => count("SELECT COUNT(*) AS n FROM processor_operations WHERE operation = 'authorize'");

  it("makes a payment creation 1 D1 round trip (claim, charge, payment, ledger, answer and record in one batch), approved or declined", async () => {
    // The tenant's data key is read once per isolate, then cached: warm it.
    expect((await send(env.DB, { amount: 100, currency: "usd", card: card() })).status).toBe(201);
    for (const [body, status] of [
      [{ amount: 100, currency: "usd", card: card() }, 201],
      [{ amount: 100, currency: "usd", card: card(), capture: "manual" }, 201],
      [{ amount: 100, currency: "usd", card: card(CARDS.declined) }, 402],
    ] as const) {
      const counted = countD1(env.DB);
      const key = newKey();
      const res = await send(counted.db, body, key);
      expect(res.status).toBe(status);
      const { id, payment } = await json<PaymentBody & { payment?: PaymentBody }>(res);
      expect(counted.roundTrips(), JSON.stringify(body)).toBe(1);
      const operations = (await book(id ?? payment?.id ?? "")).map((r) => r.operation);
      expect(operations).toEqual(status === 201 && !("capture" in body) ? ["authorize", "capture"] : ["authorize"]);
      expect((await keyRow(key)).row).toEqual({ state: "done", response_status: status });
      const audit = await env.DB.prepare("SELECT outcome, code FROM audit_events WHERE resource_id = ?").bind(id ?? payment?.id).all();
      expect(audit.results).toEqual([{ outcome: status === 201 ? "allowed" : "declined", code: status === 201 ? null : "card_declined" }]);
    }
  });

  it("takes over an abandoned or expired key in that one batch", async () => {
    const now = Date.now();
    for (const [label, state, lockedUntil, expiresAt] of [
      ["abandoned", "in_flight", now - 1, now + IDEMPOTENCY_TTL_MS],
      ["expired", "done", now - IDEMPOTENCY_TTL_MS, now - 1],
    ] as const) {
      const key = newKey();
      const { stored } = await keyRow(key);
      await env.DB.prepare(
        "INSERT INTO idempotency_keys (tenant_id, client_id, key, request_hash, state, response_status, response_body, created_at, locked_until, expires_at) VALUES ('ten_default', 'cli_maker', ?, 'another request', ?, NULL, NULL, ?, ?, ?)",
      )
        .bind(stored, state, now - IDEMPOTENCY_TTL_MS, lockedUntil, expiresAt)
        .run();
      const counted = countD1(env.DB);
      const res = await send(counted.db, { amount: 250, currency: "usd", card: card() }, key);
      expect(res.status, label).toBe(201);
      expect(res.headers.get("idempotent-replayed"), label).toBeNull();
      expect(counted.roundTrips(), label).toBe(1);
      expect((await keyRow(key)).row, label).toEqual({ state: "done", response_status: 201 });
    }
  });

  /** The audit records of one request: what a duplicate's record says, and that there is exactly one. */
  const recordsOf = async (requestId: string) =>
    (await env.DB.prepare("SELECT outcome, code, resource_id FROM audit_events WHERE request_id = ?").bind(requestId).all()).results;

  it("a duplicate fails the batch and writes none of it: then 409 in flight, 422 on mismatch, or the replay, recorded in the claim's batch", async () => {
    const body = { amount: 275, currency: "usd", card: card() };
    const hash = (b: unknown) => requestHash(env.CARD_FINGERPRINT_KEY, "POST", "/v1/payments", b);
    // A live claim of this very request (as parsed: the capture default filled in): 409, and nothing of the second
    // request is written.
    const key = newKey();
    const { stored } = await keyRow(key);
    expect((await claimKey(env.DB, "ten_default", "cli_maker", stored, await hash({ ...body, capture: "automatic" }), Date.now())).kind).toBe("claimed");
    const [p0, s0] = [await payments(), await sales()];
    let counted = countD1(env.DB);
    let id = crypto.randomUUID();
    const inFlight = await send(counted.db, body, key, id);
    expect(inFlight.status).toBe(409);
    expect(await json(inFlight)).toMatchObject({ code: "idempotency_in_flight", retryable: true });
    // The failed batch, then the claim with the key's row and the 409's audit record (the record the audit
    // middleware wrote after the answer before, in a round trip of its own).
    expect(counted.roundTrips()).toBe(2);
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_in_flight", resource_id: null }]);
    expect([await payments(), await sales()]).toEqual([p0, s0]);
    // Another request under it: 422, nothing written but its record.
    counted = countD1(env.DB);
    id = crypto.randomUUID();
    const other = await send(counted.db, { ...body, amount: 276 }, key, id);
    expect(other.status).toBe(422);
    expect(counted.roundTrips()).toBe(2);
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_key_reused", resource_id: null }]);
    expect([await payments(), await sales()]).toEqual([p0, s0]);
    // An answered key replays what it stored, and charges nothing more; its record names the replayed payment.
    const fresh = newKey();
    const first = await send(env.DB, body, fresh);
    expect(first.status).toBe(201);
    const paid = await first.text();
    const [p1, s1] = [await payments(), await sales()];
    counted = countD1(env.DB);
    id = crypto.randomUUID();
    const replay = await send(counted.db, body, fresh, id);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(paid);
    expect(counted.roundTrips()).toBe(2);
    expect(await recordsOf(id)).toEqual([{ outcome: "allowed", code: "idempotent_replay", resource_id: (JSON.parse(paid) as PaymentBody).id }]);
    expect([await payments(), await sales()]).toEqual([p1, s1]);
  });

  it("answers and records a duplicate capture, void or refund in one round trip: the replay, 422, 409", async () => {
    const payment = await pay(900, "manual");
    const capture = `/v1/payments/${payment.id}/capture`;
    const key = newKey();
    let id = crypto.randomUUID();
    const first = await sendTo(env.DB, capture, {}, key, id);
    expect(first.status).toBe(200);
    const captured = await first.text();
    // The claim that took wrote no duplicate's record: the capture's own, once.
    expect(await recordsOf(id)).toEqual([{ outcome: "allowed", code: null, resource_id: payment.id }]);
    // The replay: the claim, the key's row and the replay's record in one batch.
    let counted = countD1(env.DB);
    id = crypto.randomUUID();
    const replay = await sendTo(counted.db, capture, {}, key, id);
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(captured);
    expect(counted.roundTrips()).toBe(1);
    expect(await recordsOf(id)).toEqual([{ outcome: "allowed", code: "idempotent_replay", resource_id: payment.id }]);
    // Another request under the key.
    counted = countD1(env.DB);
    id = crypto.randomUUID();
    const other = await sendTo(counted.db, capture, { amount: 100 }, key, id);
    expect(other.status).toBe(422);
    expect(counted.roundTrips()).toBe(1);
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_key_reused", resource_id: payment.id }]);
    // The same request while the first is still in flight (its key put back in flight).
    const { stored } = await keyRow(key);
    await env.DB.prepare("UPDATE idempotency_keys SET state = 'in_flight', response_status = NULL, response_body = NULL, locked_until = ? WHERE key = ?")
      .bind(Date.now() + IN_FLIGHT_LOCK_MS, stored)
      .run();
    counted = countD1(env.DB);
    id = crypto.randomUUID();
    const inFlight = await sendTo(counted.db, capture, {}, key, id);
    expect(inFlight.status).toBe(409);
    expect(counted.roundTrips()).toBe(1);
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_in_flight", resource_id: payment.id }]);
    // Nothing of the duplicates was done: one capture.
    expect(await json(await call("GET", `/v1/payments/${payment.id}`))).toMatchObject({ status: "succeeded", amount_captured: 900 });
  });

  it("records a duplicate in the claim's batch as the middleware would: each stored answer's outcome, its resource, and only when the claim did not take", async () => {
    const now = Date.now();
    let written = 0;
    const columns = { at: "t", tenant_id: "ten_default", actor_sub: "s", actor_client: "cli_dup", actor_roles: "[]", action: "payment.create", resource_type: "payment", amount: null, currency: null, trace_id: null, ip: "127.0.0.1" };
    const duplicate = (requestId: string, resourceId: string | null = null): DuplicateRecord => ({
      build: (from, answer) => auditInsert(env.DB, "audit_events", duplicateColumns({ ...columns, request_id: requestId, resource_id: resourceId }, answer), from),
      written: () => void written++,
    });
    // A claim that takes writes no record, and the statement guarded after it (the processor's record) is written.
    let id = crypto.randomUUID();
    expect((await claimKey(env.DB, "ten_default", "cli_dup", "d1", "h1", now, sale("pi_dup_first").record, duplicate(id))).kind).toBe("claimed");
    expect(await recordsOf(id)).toEqual([]);
    expect(written).toBe(0);
    expect((await book("pi_dup_first")).map((r) => r.operation)).toContain("authorize");
    // A duplicate in flight: its record, and the guarded statement is not written.
    id = crypto.randomUUID();
    await expect(claimKey(env.DB, "ten_default", "cli_dup", "d1", "h1", now + 1, sale("pi_dup_second").record, duplicate(id))).rejects.toMatchObject({ status: 409 });
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_in_flight", resource_id: null }]);
    expect(written).toBe(1);
    expect(await book("pi_dup_second")).toEqual([]);
    // Replays of each kind of stored answer: the outcome the middleware gives its status, the id it names.
    const cases = [
      [201, JSON.stringify({ id: "pi_a" }), { outcome: "allowed", code: "idempotent_replay", resource_id: "pi_a" }],
      [200, JSON.stringify({ refund: 1, payment: { id: "pi_b" } }), { outcome: "allowed", code: "idempotent_replay", resource_id: "pi_b" }],
      [402, JSON.stringify({ payment: { id: "pi_c" } }), { outcome: "declined", code: "idempotent_replay", resource_id: "pi_c" }],
      [401, JSON.stringify({ code: "x" }), { outcome: "denied", code: "idempotent_replay", resource_id: null }],
      [404, JSON.stringify({ id: 7 }), { outcome: "refused", code: "idempotent_replay", resource_id: null }],
      [500, "not json", { outcome: "failed", code: "idempotent_replay", resource_id: null }],
    ] as const;
    for (const [status, body, record] of cases) {
      await env.DB.prepare("UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ? WHERE client_id = 'cli_dup' AND key = 'd1'").bind(status, body).run();
      id = crypto.randomUUID();
      expect((await claimKey(env.DB, "ten_default", "cli_dup", "d1", "h1", now + 2, undefined, duplicate(id))).kind).toBe("replay");
      expect(await recordsOf(id), `${status} ${body}`).toEqual([record]);
    }
    // The resource a route named itself is kept over the stored answer's.
    id = crypto.randomUUID();
    expect((await claimKey(env.DB, "ten_default", "cli_dup", "d1", "h1", now + 3, undefined, duplicate(id, "pi_named"))).kind).toBe("replay");
    expect(await recordsOf(id)).toEqual([{ outcome: "failed", code: "idempotent_replay", resource_id: "pi_named" }]);
    // Another request under the key: 422, recorded as such.
    id = crypto.randomUUID();
    await expect(claimKey(env.DB, "ten_default", "cli_dup", "d1", "h2", now + 4, undefined, duplicate(id))).rejects.toMatchObject({ status: 422 });
    expect(await recordsOf(id)).toEqual([{ outcome: "refused", code: "idempotency_key_reused", resource_id: null }]);
    expect(written).toBe(cases.length + 3);
  });

  it("decides a duplicate's outcome and replayed resource in SQL exactly as the middleware decides them in code", async () => {
    // Every status a response can have, in one statement: SQL's outcome beside the one the middleware records.
    const statuses = Array.from({ length: 500 }, (_, i) => 100 + i);
    const { results } = await env.DB.prepare(`SELECT value AS status, ${outcomeSql("value")} AS outcome FROM json_each(?)`)
      .bind(JSON.stringify(statuses))
      .all<{ status: number; outcome: string }>();
    expect(results).toHaveLength(statuses.length);
    for (const r of results) expect(r.outcome, String(r.status)).toBe(outcomeOf(r.status));
    expect(new Set(results.map((r) => r.outcome))).toEqual(new Set(["allowed", "refused", "denied", "declined", "failed"]));
    // Stored bodies of each shape: the id SQL finds is the one the code finds.
    const bodies = [
      JSON.stringify({ id: "pi_1" }),
      JSON.stringify({ id: "pi_2", payment: { id: "pi_other" } }),
      JSON.stringify({ id: 3, payment: { id: "pi_3" } }),
      JSON.stringify({ refund: { id: "re_1" }, payment: { id: "pi_4" } }),
      JSON.stringify({ payment: "pi_5" }),
      JSON.stringify({ payment: null, id: null }),
      JSON.stringify(["pi_6"]),
      JSON.stringify("pi_7"),
      "null",
      "{not json",
      "",
    ];
    for (const body of bodies) {
      const row = await env.DB.prepare(`SELECT ${replayedIdSql("?1")} AS id`).bind(body).first<{ id: string | null }>();
      expect(row?.id ?? null, body).toBe(replayedResourceId(body));
    }
    expect(await env.DB.prepare(`SELECT ${replayedIdSql("NULL")} AS id`).first("id")).toBeNull();
  });
});
