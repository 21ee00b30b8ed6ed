import { env, SELF } from "cloudflare:test";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../src/index";
import { basic, BASE, bootstrapAuth, comparable, createClient, FORM, form, gwDirect, randomIp, viaApp } from "./helpers";

/** What an answer says, minus what differs per token by design (its id and times). */
function said(body: Record<string, unknown>): Record<string, unknown> {
  if (typeof body.access_token !== "string") return body;
  const { jti: _j, iat: _i, nbf: _n, exp: _e, ...claims } = decodeJwt(body.access_token);
  return { ...body, access_token: claims };
}

/** A token request with a declared length, as clients send them, from its own address. */
function tokenInit(body: string, headers: Record<string, string>, ip: string): RequestInit {
  return { method: "POST", headers: { ...FORM, "content-length": String(new TextEncoder().encode(body).length), "cf-connecting-ip": ip, ...headers }, body };
}

/** What a request from `ip` left behind: its security events (minus ids, times and request ids) and the address's failure count. */
async function traces(ip: string): Promise<unknown> {
  const events = await env.DB.prepare("SELECT event_type, severity, client_id, route, reason FROM security_events WHERE ip = ? ORDER BY id").bind(ip).all();
  const failures = await env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(`ip:${ip}`).first<number>("failures");
  return { events: events.results, failures };
}

const clientFailures = async (id: string) => (await env.DB.prepare("SELECT failures FROM auth_failures WHERE key = ?").bind(`client:${id}`).first<number>("failures")) ?? 0;

afterEach(() => vi.restoreAllMocks());

describe("the token endpoint without the app (src/token-first.ts)", () => {
  it("answers and records exactly as the app does, without the app", async () => {
    const c = await createClient({ name: "token-first", roles: ["clinician"] });
    const cases: [string, string, string, Record<string, string>, number][] = [
      ["a secret in Basic", "/oauth/token", form({ grant_type: "client_credentials", scope: "phi:read" }), { authorization: basic(c.client_id, c.client_secret) }, 200],
      ["the original path", "/token", form({ grant_type: "client_credentials" }), { authorization: basic(c.client_id, c.client_secret) }, 200],
      ["a secret in the body", "/oauth/token", form({ grant_type: "client_credentials", client_id: c.client_id, client_secret: c.client_secret }), {}, 200],
      ["a JSON body", "/oauth/token", JSON.stringify({ grant_type: "client_credentials", scope: "phi:read" }), { authorization: basic(c.client_id, c.client_secret), "content-type": "application/json" }, 200],
      ["the bootstrap client", "/oauth/token", form({ grant_type: "client_credentials", scope: "admin" }), { authorization: bootstrapAuth() }, 200],
      ["a wrong secret", "/oauth/token", form({ grant_type: "client_credentials" }), { authorization: basic(c.client_id, "wrong") }, 401],
      ["no credentials", "/oauth/token", form({ grant_type: "client_credentials" }), {}, 401],
      ["another grant", "/oauth/token", form({ grant_type: "password" }), { authorization: basic(c.client_id, c.client_secret) }, 400],
      ["no grant", "/oauth/token", form({ scope: "phi:read" }), { authorization: basic(c.client_id, c.client_secret) }, 400],
      ["a scope beyond the client's", "/oauth/token", form({ grant_type: "client_credentials", scope: "admin" }), { authorization: basic(c.client_id, c.client_secret) }, 400],
      ["a parameter twice", "/oauth/token", "grant_type=client_credentials&grant_type=client_credentials", { authorization: basic(c.client_id, c.client_secret) }, 400],
      ["a body of another type", "/oauth/token", "grant_type=client_credentials", { authorization: basic(c.client_id, c.client_secret), "content-type": "text/plain" }, 415],
      ["a broken Basic header", "/oauth/token", form({ grant_type: "client_credentials" }), { authorization: "Basic !!!" }, 400],
    ];
    for (const [what, path, body, headers, status] of cases) {
      const [ipFast, ipSlow] = [randomIp(), randomIp()];
      const toApp = vi.spyOn(app, "fetch");
      const before = await clientFailures(c.client_id);
      const fast = await gwDirect(path, tokenInit(body, headers, ipFast));
      const counted = (await clientFailures(c.client_id)) - before;
      expect(toApp, what).not.toHaveBeenCalled();
      toApp.mockRestore();
      const between = await clientFailures(c.client_id);
      const slow = await viaApp(path, tokenInit(body, headers, ipSlow));
      expect([fast.status, slow.status], what).toEqual([status, status]);
      expect(comparable(fast), what).toEqual(comparable(slow));
      const [a, b] = [await fast.json<Record<string, unknown>>(), await slow.json<Record<string, unknown>>()];
      // A problem names its own request.
      if (status !== 200) expect([a.request_id, b.request_id], what).toEqual([fast.headers.get("x-request-id"), slow.headers.get("x-request-id")]);
      expect(said({ ...a, request_id: null }), what).toEqual(said({ ...b, request_id: null }));
      // The same security events and address failures, once each; a wrong secret counts against the client once.
      expect(await traces(ipFast), what).toEqual(await traces(ipSlow));
      if (status === 401) expect((await traces(ipFast)) as { events: unknown[] }, what).toMatchObject({ events: [{ event_type: "client_auth_failed", route: path }], failures: 1 });
      if (what === "a wrong secret") expect([counted, (await clientFailures(c.client_id)) - between]).toEqual([1, 1]);
    }
  });

  it("writes the app's access line, keeps a safe X-Request-Id, and never logs the token", async () => {
    const log = vi.spyOn(console, "log");
    const body = form({ grant_type: "client_credentials", scope: "phi:read" });
    const res = await gwDirect("/oauth/token", tokenInit(body, { authorization: bootstrapAuth(), "x-request-id": "client-token-1" }, randomIp()));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("client-token-1");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("strict-transport-security")).toContain("max-age=");
    const { access_token } = await res.json<{ access_token: string }>();
    const lines = log.mock.calls.map((call) => String(call[0]));
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "request" && l.request_id === "client-token-1");
    expect(line).toMatchObject({ level: "info", service: "auth", method: "POST", route: "/oauth/token", status: 200 });
    expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(lines.some((l) => l.includes(access_token.split(".")[2] ?? "-") || l.includes(env.BOOTSTRAP_CLIENT_SECRET))).toBe(false);
  });

  it("leaves everything else to the app, before anything was read: one answer each", async () => {
    const body = form({ grant_type: "client_credentials", scope: "phi:read" });
    const chunked = () => new Blob([body]).stream();
    const cases: [string, string, RequestInit, number][] = [
      ["a query string", "/oauth/token?x=1", tokenInit(body, { authorization: bootstrapAuth() }, randomIp()), 200],
      ["no declared length", "/oauth/token", { method: "POST", headers: { ...FORM, authorization: bootstrapAuth() }, body: chunked(), duplex: "half" } as RequestInit, 200],
      ["a principal header", "/oauth/token", tokenInit(body, { authorization: bootstrapAuth(), "x-gateway-principal": "forged.forged" }, randomIp()), 200],
      ["another method", "/oauth/token", { method: "GET", headers: { authorization: bootstrapAuth() } }, 405],
    ];
    for (const [what, path, init, status] of cases) {
      const toApp = vi.spyOn(app, "fetch");
      const res = await gwDirect(path, init);
      expect(res.status, what).toBe(status);
      expect(toApp, what).toHaveBeenCalledTimes(1);
      toApp.mockRestore();
    }
    // Over the app's 1 MiB by its declared length: the app's 413, nothing read.
    const big = "x".repeat(1024 * 1024 + 1);
    const tooBig = await gwDirect("/oauth/token", tokenInit(big, { authorization: bootstrapAuth() }, randomIp()));
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json<{ code: string }>()).code).toBe("payload_too_large");
  });

  it("is the path clients take through the runtime (SELF), which declares the length", async () => {
    const toApp = vi.spyOn(app, "fetch");
    const res = await SELF.fetch(`${BASE}/oauth/token`, { method: "POST", headers: { ...FORM, authorization: bootstrapAuth(), "cf-connecting-ip": randomIp() }, body: form({ grant_type: "client_credentials", scope: "phi:read" }) });
    expect(res.status).toBe(200);
    expect(toApp).not.toHaveBeenCalled();
  });
});
