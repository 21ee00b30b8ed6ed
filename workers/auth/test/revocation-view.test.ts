import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { checkGatewayToken } from "../src/bearer";
import { REVOKED_KEEP_SECONDS, REVOKED_PRUNE_LIMIT, viewStats } from "../src/revocation/view";
import { countD1 } from "./d1-count";
import { basic, clientToken, createClient, form, FORM, gw } from "./helpers";

/**
 * The gateway's revocation view against the real D1, with `now` injected: the clock
 * moves forward by the bounds instead of the test waiting for them. Another isolate's
 * revocation or disabling is its row written straight into D1 (this isolate never sees
 * the request). Bounds are the configured defaults: 5 s and 30 s.
 */
const REFRESH = Number(env.REVOCATION_REFRESH_MS);
const MAX = Number(env.REVOCATION_MAX_STALENESS_MS);
// One synthetic clock for the file, only ever moving forward (the view is module state).
let clock = Date.now();

async function check(tok: string, at: number, over: Partial<Env> = {}) {
  const ctx = createExecutionContext();
  const r = await checkGatewayToken({ ...env, ...over }, ctx, tok, at);
  await waitOnExecutionContext(ctx);
  return r.ok ? "ok" : r.reason;
}

/** Moves past any earlier view's hard bound, so the next check loads the view at `clock`. */
async function freshViewAt(tok: string): Promise<number> {
  clock += MAX + 1000;
  expect(await check(tok, clock)).toBe("ok");
  expect(viewStats(clock)?.ageMs).toBe(0);
  return clock;
}

function jtiOf(tok: string): { jti: string; exp: number; client_id: string } {
  return JSON.parse(atob((tok.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/"))) as { jti: string; exp: number; client_id: string };
}

describe("revocation view: a change made elsewhere is refused within the bound", () => {
  it("a token revoked by another isolate: answered from memory (no D1) until the view refreshes, refused from then on", async () => {
    const c = await createClient({ name: "view-revoke", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    const t = await freshViewAt(tok);
    const { jti, exp, client_id } = jtiOf(tok);
    await env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, client_id, exp, new Date().toISOString(), "another-isolate")
      .run();
    const counted = countD1(env.DB);
    // Inside the window the view answers alone: no D1 round trip at all.
    expect(await check(tok, t + 1, { DB: counted.db })).toBe("ok");
    expect(counted.roundTrips()).toBe(0);
    // Half the bound: this request still answers from the view and refreshes it in its own waitUntil.
    expect(await check(tok, t + REFRESH / 2, { DB: counted.db })).toBe("ok");
    expect(counted.roundTrips()).toBe(1);
    expect(await check(tok, t + REFRESH / 2 + 1)).toBe("revoked");
  });

  it("an idle isolate past the bound refreshes before answering: the revoked token is refused at the bound itself", async () => {
    const c = await createClient({ name: "view-idle", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    const t = await freshViewAt(tok);
    const { jti, exp, client_id } = jtiOf(tok);
    await env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, client_id, exp, new Date().toISOString(), "another-isolate")
      .run();
    expect(await check(tok, t + REFRESH)).toBe("revoked");
    clock = t + REFRESH;
  });

  it("a client disabled by another isolate: its tokens are refused within the bound", async () => {
    const c = await createClient({ name: "view-disable", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    const t = await freshViewAt(tok);
    await env.DB.prepare("UPDATE clients SET disabled = 1, disabled_at = ? WHERE id = ?").bind(new Date().toISOString(), c.client_id).run();
    expect(await check(tok, t + 1)).toBe("ok");
    expect(await check(tok, t + REFRESH)).toBe("client_disabled");
    // Another token of another client is not affected.
    const other = await clientToken(await createClient({ name: "view-other", roles: ["clinician"] }), "phi:read");
    expect(await check(other, t + REFRESH + 1)).toBe("ok");
    clock = t + REFRESH + 1;
  });

  it("the incremental refresh reads only what is new: a long-revoked token stays refused across many refreshes", async () => {
    const c = await createClient({ name: "view-many", roles: ["clinician"] });
    const first = await clientToken(c, "phi:read");
    const t = await freshViewAt(first);
    const { jti, exp, client_id } = jtiOf(first);
    await env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, client_id, exp, new Date().toISOString(), "another-isolate")
      .run();
    const seqBefore = viewStats(t)?.seq ?? 0;
    for (let i = 1; i <= 4; i++) expect(await check(first, t + i * REFRESH)).toBe("revoked");
    expect(viewStats(t + 4 * REFRESH)?.seq).toBe(seqBefore + 1);
    clock = t + 4 * REFRESH;
  });
});

describe("revoked_tokens pruning (the revoke handler's batch)", () => {
  const insert = (jti: string, exp: number) =>
    env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, "cli_prune_test", exp, new Date().toISOString(), "another-isolate");
  const head = () => env.DB.prepare("SELECT MAX(seq) AS m FROM revoked_tokens").first<number>("m");
  const present = async (jtis: string[]) =>
    (await env.DB.prepare(`SELECT jti FROM revoked_tokens WHERE jti IN (${jtis.map(() => "?").join(",")})`).bind(...jtis).all<{ jti: string }>()).results.map((r) => r.jti).sort();
  const oldCount = async (nowSec: number) =>
    env.DB.prepare("SELECT COUNT(*) AS n FROM revoked_tokens WHERE expires_at < ? AND seq < (SELECT MAX(seq) FROM revoked_tokens)").bind(nowSec - REVOKED_KEEP_SECONDS).first<number>("n");

  it("a revocation deletes long-expired rows (bounded), keeps recent and live ones and the highest seq; the view stays right", async () => {
    const c = await createClient({ name: "view-prune", roles: ["clinician"] });
    const [kept, revokedHere, revokedElsewhere] = [await clientToken(c, "phi:read"), await clientToken(c, "phi:read"), await clientToken(c, "phi:read")];
    const t = await freshViewAt(kept);
    const nowSec = Math.floor(Date.now() / 1000);
    const tag = crypto.randomUUID();
    // 150 revocations of tokens expired two hours ago, one expired a minute ago (still within the hour kept).
    const old = Array.from({ length: 150 }, (_, i) => `old-${tag}-${i}`);
    await env.DB.batch([...old.map((j) => insert(j, nowSec - 7200)), insert(`recent-${tag}`, nowSec - 60)]);
    const before = (await oldCount(nowSec)) ?? 0;
    expect(before).toBeGreaterThanOrEqual(150);
    const revoke = (tok: string) => gw("/oauth/revoke", { method: "POST", headers: { ...FORM, authorization: basic(c.client_id, c.client_secret) }, body: form({ token: tok }) });
    expect((await revoke(revokedHere)).status).toBe(200);
    // At most 100 deleted per revocation, only rows more than an hour past their token's exp.
    expect(await oldCount(nowSec)).toBe(before - Math.min(before, REVOKED_PRUNE_LIMIT));
    expect(await present([`recent-${tag}`, jtiOf(revokedHere).jti])).toEqual([`recent-${tag}`, jtiOf(revokedHere).jti].sort());
    // A second revocation (here of the same token: nothing inserted) prunes the rest.
    expect((await revoke(revokedHere)).status).toBe(200);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM revoked_tokens WHERE jti LIKE ?").bind(`old-${tag}-%`).first<number>("n")).toBe(0);

    // The row with the highest seq stays even when long expired, so MAX(seq) never moves back by pruning.
    await insert(`old-top-${tag}`, nowSec - 7200).run();
    const top = await head();
    expect((await revoke(revokedHere)).status).toBe(200);
    expect(await head()).toBe(top);
    expect(await present([`old-top-${tag}`])).toEqual([`old-top-${tag}`]);

    // The view, refreshing incrementally after the pruning: a revocation made elsewhere is refused, the
    // revoked token still is, the other token is not, and its cursor is the table's head (no reload as "restored").
    const { jti, exp } = jtiOf(revokedElsewhere);
    await insert(jti, exp).run();
    expect(await check(revokedElsewhere, t + REFRESH)).toBe("revoked");
    expect(await check(revokedHere, t + REFRESH + 1)).toBe("revoked");
    expect(await check(kept, t + REFRESH + 2)).toBe("ok");
    expect(viewStats(t + REFRESH + 2)?.seq).toBe(await head());
    clock = t + REFRESH + 2;
  });
});

describe("revocation view: a burst of requests on an isolate whose view must load", () => {
  it("makes one D1 round trip: the first request loads, the others wait for its load and answer from it", async () => {
    const c = await createClient({ name: "view-burst", roles: ["clinician"] });
    const tok = await clientToken(c, "phi:read");
    const other = await clientToken(c, "phi:read");
    await freshViewAt(tok);
    const { jti, exp, client_id } = jtiOf(other);
    await env.DB.prepare("INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at, revoked_by) VALUES (?, ?, ?, ?, ?)")
      .bind(jti, client_id, exp, new Date().toISOString(), "another-isolate")
      .run();
    // Past the hard bound (an isolate idle for a while): every request of the burst must see a loaded view.
    clock += MAX + 1000;
    const counted = countD1(env.DB);
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => check(i % 2 ? other : tok, clock, { DB: counted.db })));
    expect(burst).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? "revoked" : "ok")));
    expect(counted.roundTrips()).toBe(1);
    expect(viewStats(clock)?.ageMs).toBe(0);
  });

  it("with D1 down, the burst tries D1 once and every request fails closed", async () => {
    const tok = await clientToken(await createClient({ name: "view-burst-down", roles: ["clinician"] }), "phi:read");
    clock += 2 * MAX;
    const down = countD1(env.FAULT_DB);
    const burst = await Promise.all(Array.from({ length: 10 }, () => check(tok, clock, { DB: down.db })));
    expect(burst).toEqual(Array.from({ length: 10 }, () => "unavailable"));
    expect(down.roundTrips()).toBe(1);
    // D1 back: after the failed attempt's pause the next request loads and answers.
    clock += REFRESH / 2;
    expect(await check(tok, clock)).toBe("ok");
  });
});

describe("revocation view: D1 unavailable", () => {
  it("answers from the view up to the hard bound, then fails closed; recovers when D1 answers again", async () => {
    const tok = await clientToken(await createClient({ name: "view-d1-down", roles: ["clinician"] }), "phi:read");
    const t = await freshViewAt(tok);
    const down = countD1(env.FAULT_DB);
    // The fresh view answers without D1 at all.
    expect(await check(tok, t + 1, { DB: down.db })).toBe("ok");
    expect(down.roundTrips()).toBe(0);
    // Refreshes fail (a database without the tables); the view still answers within the hard bound.
    for (const at of [t + REFRESH / 2, t + REFRESH, t + REFRESH + 1, t + MAX / 2, t + MAX - 1]) {
      expect(await check(tok, at, { DB: down.db }), `at +${at - t} ms`).toBe("ok");
    }
    expect(down.roundTrips()).toBeGreaterThan(0);
    // Past the hard bound: refused, never answered from the old view.
    for (const at of [t + MAX, t + MAX + 1, t + 2 * MAX]) {
      expect(await check(tok, at, { DB: down.db }), `at +${at - t} ms`).toBe("unavailable");
    }
    // D1 back: the first request after the last failed attempt's pause reloads and answers.
    expect(await check(tok, t + 2 * MAX + REFRESH / 2)).toBe("ok");
    clock = t + 2 * MAX + REFRESH / 2;
  });

  it("a view long past the hard bound whose reload fails refuses rather than guessing", async () => {
    const tok = await clientToken(await createClient({ name: "view-old", roles: ["clinician"] }), "phi:read");
    clock += 2 * MAX;
    expect(await check(tok, clock, { DB: env.FAULT_DB })).toBe("unavailable");
    // Moments after a failed attempt requests are refused without trying D1 again; then D1 is retried.
    expect(await check(tok, clock + 1)).toBe("unavailable");
    expect(await check(tok, clock + REFRESH / 2)).toBe("ok");
    clock += REFRESH / 2;
  });
});
