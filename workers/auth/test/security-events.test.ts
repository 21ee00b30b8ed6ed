import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { snapshot } from "../../../shared/metrics";
import {
  ALWAYS_STORED_EVENTS,
  recordSecurityEvent,
  SECURITY_EVENT_ROWS_PER_WINDOW as N,
  SECURITY_EVENT_WINDOW_MS,
  type SecurityEvent,
} from "../src/security-events";
import { gwDirect, randomIp } from "./helpers";

/** The rows of one type from one address, oldest first. */
async function rows(type: string, ip: string) {
  const { results } = await env.DB.prepare("SELECT time, reason FROM security_events WHERE event_type = ? AND ip = ? ORDER BY id").bind(type, ip).all<{ time: string; reason: string | null }>();
  return results;
}

/** The security event counter's value for a type, in this isolate (auth exports no metrics in tests, so nothing drains it). */
function counted(type: string): number {
  const points = snapshot().find((m) => m.name === "auth_security_events_total")?.points ?? [];
  return points.reduce((n, p) => n + ("value" in p && p.labels.event_type === type ? p.value : 0), 0);
}

/** One event recorded directly, at `now`, with its insert awaited. */
async function record(e: SecurityEvent, now: number): Promise<void> {
  const ctx = createExecutionContext();
  recordSecurityEvent(env.DB, ctx, e, now);
  await waitOnExecutionContext(ctx);
}

/** `security_event` log lines (written with console.warn) of one address. */
function eventLines(warn: { mock: { calls: unknown[][] } }, ip: string): Record<string, unknown>[] {
  return warn.mock.calls
    .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
    .filter((l) => l.msg === "security_event" && l.ip === ip);
}

afterEach(() => vi.restoreAllMocks());

describe("security event rows, bounded per isolate (src/security-events.ts)", () => {
  it("stores at most N rows of token_missing per window from an anonymous flood; every request still gets its 401, log line and count", async () => {
    const ip = randomIp();
    const extra = 7;
    const warn = vi.spyOn(console, "warn");
    const countedBefore = counted("token_missing");
    for (let i = 0; i < N + extra; i++) {
      const res = await gwDirect("/v1/phi/Patient/x", { headers: { "cf-connecting-ip": ip } });
      expect(res.status, `request ${i}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
    }
    expect(await rows("token_missing", ip)).toHaveLength(N);
    expect(counted("token_missing") - countedBefore).toBe(N + extra);
    const lines = eventLines(warn, ip);
    expect(lines).toHaveLength(N + extra);
    expect(lines.filter((l) => l.stored === false)).toHaveLength(extra);
    // Told once per window that rows of this type are being left out.
    const limited = warn.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('"security_event_rows_limited"') && l.includes('"token_missing"'));
    expect(limited).toHaveLength(1);
    // Each type has its own window: a malformed token from the same address is still stored.
    expect((await gwDirect("/v1/phi/Patient/x", { headers: { "cf-connecting-ip": ip, authorization: "Bearer not-a-token" } })).status).toBe(401);
    expect(await rows("token_malformed", ip)).toHaveLength(1);
  });

  it("the first row stored in the next window says how many were not stored, and since when", async () => {
    const ip = randomIp();
    const floodStart = Date.now();
    for (let i = 0; i < N + 3; i++) expect((await gwDirect("/v1/payments", { headers: { "cf-connecting-ip": ip } })).status).toBe(401);
    const floodEnd = Date.now();
    expect(await rows("token_missing", ip)).toHaveLength(N);
    // The next window, by an injected clock: the next event is stored and carries the count.
    const next = Date.now() + SECURITY_EVENT_WINDOW_MS;
    await record({ type: "token_missing", ip, route: "/v1/payments" }, next);
    await record({ type: "token_missing", ip, route: "/v1/payments" }, next + 1);
    const stored = await rows("token_missing", ip);
    expect(stored).toHaveLength(N + 2);
    const carried = stored[N]?.reason ?? "";
    const m = /^3 more token_missing events not stored since (\S+) \(at most (\d+) rows per (\d+) s per isolate\)$/.exec(carried);
    expect(m, carried).not.toBeNull();
    const since = Date.parse(m?.[1] ?? "");
    expect(since).toBeGreaterThanOrEqual(floodStart);
    expect(since).toBeLessThanOrEqual(floodEnd);
    expect([Number(m?.[2]), Number(m?.[3])]).toEqual([N, SECURITY_EVENT_WINDOW_MS / 1000]);
    expect(stored[N]?.time).toBe(new Date(next).toISOString());
    // Said once: the row after it has its own reason (none).
    expect(stored[N + 1]?.reason).toBeNull();

    // An event's own reason code stays first.
    const ip2 = randomIp();
    const t0 = Date.now();
    for (let i = 0; i < N + 2; i++) await record({ type: "token_invalid_signature", ip: ip2, reason: "bad_signature" }, t0 + i);
    await record({ type: "token_invalid_signature", ip: ip2, reason: "bad_signature" }, t0 + SECURITY_EVENT_WINDOW_MS);
    const sig = await rows("token_invalid_signature", ip2);
    expect(sig).toHaveLength(N + 1);
    expect(sig[N]?.reason).toBe(
      `bad_signature; 2 more token_invalid_signature events not stored since ${new Date(t0 + N).toISOString()} (at most ${N} rows per ${SECURITY_EVENT_WINDOW_MS / 1000} s per isolate)`,
    );
  });

  it("always stores the platform admin's tenant events, past the limit; client_lockout is bounded (an anonymous caller can trigger it)", async () => {
    expect([...ALWAYS_STORED_EVENTS].sort()).toEqual(["tenant_data_keys_destroyed", "tenant_move_failed", "tenant_moved", "tenant_offboarded"]);
    const ip = randomIp();
    const t0 = Date.now();
    for (let i = 0; i < N + 5; i++) {
      await record({ type: "tenant_offboarded", ip, clientId: "cli_admin", reason: `tenant ten_x${i}: 0 clients disabled` }, t0 + i);
      await record({ type: "client_lockout", ip, clientId: "cli_victim", reason: "client_locked" }, t0 + i);
    }
    const offboarded = await rows("tenant_offboarded", ip);
    expect(offboarded).toHaveLength(N + 5);
    expect(offboarded.every((r) => r.reason?.startsWith("tenant ten_x") && !r.reason.includes("not stored"))).toBe(true);
    expect(await rows("client_lockout", ip)).toHaveLength(N);
  });
});
