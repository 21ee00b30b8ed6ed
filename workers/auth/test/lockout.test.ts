import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { basic, bootstrapAuth, createClient, randomIp, tokenRequest } from "./helpers";

/**
 * Failed client authentication in D1 windows: the per-client lockout, and the per-address
 * limit that refuses only failing attempts (a client that authenticates behind a busy
 * address still gets its token). Assertions: test/private-key-jwt.test.ts.
 */
describe("rate limiting of failed client authentication", () => {
  it("locks a client id after repeated failures, even for the right secret (429 + Retry-After)", async () => {
    const c = await createClient({ name: "victim", roles: ["billing"] });
    for (let i = 0; i < 5; i++) {
      const r = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, "wrong"), "cf-connecting-ip": randomIp() });
      expect(r.status).toBe(401);
    }
    const locked = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() });
    expect(locked.status).toBe(429);
    const retry = Number(locked.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(300);
    expect((await locked.json<{ error: string }>()).error).toBe("too_many_attempts");
    const events = await env.DB.prepare("SELECT event_type FROM security_events WHERE client_id = ?").bind(c.client_id).all<{ event_type: string }>();
    expect(events.results.map((e) => e.event_type)).toContain("client_lockout");
  });

  it("forgets a client's earlier failures once it authenticates, and writes nothing when there were none", async () => {
    const c = await createClient({ name: "forgetful", roles: ["billing"] });
    const key = `client:${c.client_id}`;
    const failures = async () => (await env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(key).first<{ failures: number }>())?.failures ?? 0;
    for (let i = 0; i < 3; i++) expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, "wrong"), "cf-connecting-ip": randomIp() })).status).toBe(401);
    expect(await failures()).toBe(3);
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() })).status).toBe(200);
    // The clearing runs in waitUntil, after the response.
    await expect.poll(failures).toBe(0);
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": randomIp() })).status).toBe(200);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures WHERE key = ?").bind(key).first("n")).toBe(0);
  });

  it("an address over its limit gets 429 for failing attempts (unknown ids included, no longer counted), never for a client that authenticates", async () => {
    const ip = randomIp();
    for (let i = 0; i < 20; i++) {
      const r = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`cli_guess_${i}`, "x"), "cf-connecting-ip": ip });
      expect(r.status).toBe(401);
    }
    const addressFailures = () => env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(`ip:${ip}`).first<number>("failures");
    expect(await addressFailures()).toBe(20);
    // Failing guesses from there: 429 with Retry-After, and neither the address nor the unknown id is counted further.
    const guess = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic("cli_guess_more", "x"), "cf-connecting-ip": ip });
    expect(guess.status).toBe(429);
    expect(Number(guess.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await guess.json<{ error: string }>()).error).toBe("too_many_attempts");
    expect(await addressFailures()).toBe(20);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures WHERE key = 'client:cli_guess_more'").first("n")).toBe(0);
    // The right credentials from the same address: a token (the bootstrap client and a stored one).
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: bootstrapAuth(), "cf-connecting-ip": ip })).status).toBe(200);
    const c = await createClient({ name: "behind-the-nat", roles: ["billing"] });
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, c.client_secret), "cf-connecting-ip": ip })).status).toBe(200);
    // A wrong secret for a client that exists still counts against that client there.
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(c.client_id, "wrong"), "cf-connecting-ip": ip })).status).toBe(429);
    expect(await env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(`client:${c.client_id}`).first("failures")).toBe(1);
  });

  it("one client failing from an address is locked; another client on the same address keeps getting tokens", async () => {
    const ip = randomIp();
    const rotated = await createClient({ name: "retries-a-rotated-secret", roles: ["billing"] });
    const bystander = await createClient({ name: "same-nat", roles: ["clinician"] });
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(rotated.client_id, "the-old-secret"), "cf-connecting-ip": ip });
      statuses.push(r.status);
      // Between the failures, the other integration behind the same address authenticates as usual.
      if (i % 5 === 4) expect((await tokenRequest({ grant_type: "client_credentials", scope: "phi:read" }, { authorization: basic(bystander.client_id, bystander.client_secret), "cf-connecting-ip": ip })).status).toBe(200);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
    // The failing client stays locked, even with its right secret, from any address.
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(rotated.client_id, rotated.client_secret), "cf-connecting-ip": ip })).status).toBe(429);
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(rotated.client_id, rotated.client_secret) })).status).toBe(429);
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(bystander.client_id, bystander.client_secret), "cf-connecting-ip": ip })).status).toBe(200);
  });

  it("failures naming unknown client ids add no row per id: only the address's window, which still limits them", async () => {
    const ip = randomIp();
    const tag = crypto.randomUUID();
    const total = () => env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures").first<number>("n");
    const before = (await total()) ?? 0;
    for (let i = 0; i < 15; i++) {
      const r = await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`junk-${tag}-${crypto.randomUUID()}`, "x"), "cf-connecting-ip": ip });
      expect(r.status).toBe(401);
    }
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures WHERE key LIKE ?").bind(`client:junk-${tag}-%`).first("n")).toBe(0);
    expect(await env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(`ip:${ip}`).first("failures")).toBe(15);
    expect(((await total()) ?? 0) - before).toBeLessThanOrEqual(1);
    // An unknown id and an existing client alike still reach the address's limit (20): then 429.
    for (let i = 0; i < 5; i++) await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`junk-${tag}-x${i}`, "x"), "cf-connecting-ip": ip });
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`junk-${tag}-last`, "x"), "cf-connecting-ip": ip })).status).toBe(429);
  });

  it("a failure prunes ended windows of any key (at most 100 at a time) and keeps the live ones", async () => {
    const window = Number(env.AUTH_FAILURE_WINDOW_SECONDS);
    const now = Math.floor(Date.now() / 1000);
    const tag = crypto.randomUUID();
    const rows = (prefix: string) => env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures WHERE key LIKE ?").bind(`${prefix}-${tag}-%`).first<number>("n");
    const put = (key: string, windowStart: number) => env.DB.prepare("INSERT INTO auth_failures (key, window_start, failures) VALUES (?, ?, 3)").bind(key, windowStart);
    // 150 windows that ended (one just at the boundary), 5 still open (a minute short of ending).
    await env.DB.batch([
      ...Array.from({ length: 149 }, (_, i) => put(`ip:ended-${tag}-${i}`, now - window - 60 - i)),
      put(`ip:ended-${tag}-edge`, now - window - 1),
      ...Array.from({ length: 5 }, (_, i) => put(`ip:live-${tag}-${i}`, now - window + 60)),
    ]);
    const ended = async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM auth_failures WHERE window_start <= ?").bind(now - window).first<number>("n")) ?? 0;
    const before = await ended();
    expect(before).toBeGreaterThanOrEqual(150);
    const fail = () => tokenRequest({ grant_type: "client_credentials" }, { authorization: basic(`cli_prune_${tag}`, "x"), "cf-connecting-ip": randomIp() });
    expect((await fail()).status).toBe(401);
    expect(await ended()).toBe(before - Math.min(before, 100));
    expect((await fail()).status).toBe(401);
    expect(await rows("ip:ended")).toBe(0);
    expect(await rows("ip:live")).toBe(5);
    // A success writes nothing of this: a client that authenticates leaves an ended window in place.
    await put(`ip:ended-${tag}-after`, now - window - 60).run();
    expect((await tokenRequest({ grant_type: "client_credentials" }, { authorization: bootstrapAuth(), "cf-connecting-ip": randomIp() })).status).toBe(200);
    expect(await rows("ip:ended")).toBe(1);
  });

  it("starts a new window once the old one has passed", async () => {
    const { lockState } = await import("../src/rate-limit");
    const policy = { maxFailures: 5, windowSeconds: 300 };
    expect(lockState(null, policy, 1000)).toEqual({ locked: false });
    expect(lockState({ windowStart: 1000, failures: 4 }, policy, 1001)).toEqual({ locked: false });
    expect(lockState({ windowStart: 1000, failures: 5 }, policy, 1001)).toEqual({ locked: true, retryAfter: 299 });
    expect(lockState({ windowStart: 1000, failures: 9 }, policy, 1300)).toEqual({ locked: false });
  });

  it("failureOutcome: 401 counted against the address, and the client when it exists; over the limit 429, counted against an existing client only", async () => {
    const { failureOutcome } = await import("../src/rate-limit");
    expect(failureOutcome({ locked: false }, true)).toEqual({ status: 401, count: ["address", "client"] });
    expect(failureOutcome({ locked: false }, false)).toEqual({ status: 401, count: ["address"] });
    expect(failureOutcome({ locked: true, retryAfter: 42 }, true)).toEqual({ status: 429, retryAfter: 42, count: ["client"] });
    expect(failureOutcome({ locked: true, retryAfter: 42 }, false)).toEqual({ status: 429, retryAfter: 42, count: [] });
  });
});
