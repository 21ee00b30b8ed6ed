import { env, runDurableObjectAlarm, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { IsolateTracer, parseTraceparent, tracedRpc } from "../../../shared/manual-spans";
import type { OtlpSpan } from "../../../shared/telemetry/otlp";
import { gatewayHeaders } from "../../../shared/testing/principal";
import { sessionStub } from "../src/session/stub";
import { sessionTracer } from "../src/session/device-session";
import { asDevice, BASE, connectDevice, Inbox, reading, register } from "./helpers";

/** An attribute of an OTLP/JSON span, as its plain value. */
function attr(s: OtlpSpan | undefined, key: string): unknown {
  const v = s?.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if ("intValue" in v) return Number(v.intValue);
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("doubleValue" in v) return v.doubleValue;
  return undefined;
}

/**
 * Hibernated WebSocket handlers and DO alarms run outside otel-cf-workers:
 * their spans come from shared/manual-spans.ts, kept as OTLP/JSON until an
 * export is due. (No collector is configured in tests, so the buffer is only
 * drained when a flush is due.)
 */
describe("spans of hibernated device sessions", () => {
  it("records one span per frame, linked to the request that opened the socket, with outcomes and no payload", async () => {
    const dev = await register();
    const before = sessionTracer.pending().length;
    // The gateway's traceparent rides on the upgrade (with telemetry off, the gateway still names the trace).
    const upgradeTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const res = await SELF.fetch(`${BASE}/v1/devices/${dev.id}/session`, {
      headers: { upgrade: "websocket", traceparent: `00-${upgradeTrace}-00f067aa0ba902b7-01`, ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, asDevice(dev.id))) },
    });
    const ws = res.webSocket;
    if (!ws) throw new Error(`device socket refused: ${res.status}`);
    ws.accept();
    const inbox = new Inbox(ws);
    ws.send(JSON.stringify(reading(1, { value: 96 })));
    ws.send(JSON.stringify(reading(1, { value: 96 })));
    ws.send("not json");
    await inbox.count(3);
    ws.close();
    const spans = sessionTracer.pending().slice(before).filter((s) => s.name === "DeviceSession message");
    expect(spans).toHaveLength(3);
    const stored = spans.map((s) => attr(s, "devices.readings.stored"));
    expect(stored.filter((n) => n === 1)).toHaveLength(1);
    expect(spans.filter((s) => attr(s, "devices.readings.duplicates") === 1)).toHaveLength(1);
    expect(spans.filter((s) => attr(s, "devices.frame.error") === "invalid_json")).toHaveLength(1);
    for (const s of spans) {
      expect(BigInt(s.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(s.startTimeUnixNano));
      // Each frame is its own trace, linked to the span of the request that opened the socket.
      expect(s.links).toHaveLength(1);
      expect(s.links[0]?.traceId).not.toBe(s.traceId);
      expect(s.links[0]?.traceId).toBe(upgradeTrace);
      // Nothing of the frame itself (values, device id) is an attribute.
      expect(JSON.stringify(s.attributes)).not.toContain(dev.id);
      expect(JSON.stringify(s.attributes)).not.toContain("96");
    }
  });

  it("records the offline check of an alarm", async () => {
    const dev = await register();
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1)));
    await inbox.count(1);
    const before = sessionTracer.pending().length;
    const ran = await runDurableObjectAlarm(env.SESSIONS.get(env.SESSIONS.idFromName(dev.id)));
    expect(ran).toBe(true);
    const span = sessionTracer.pending().slice(before).find((s) => s.name === "DeviceSession alarm");
    expect(attr(span, "devices.check.outcome")).toBe("rearm");
    ws.close();
  });

  it("parses only well-formed W3C traceparent values", () => {
    expect(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toMatchObject({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 });
    for (const bad of [undefined, null, "", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-XYZ-00f067aa0ba902b7-01"])
      expect(parseTraceparent(bad)).toBeUndefined();
  });
});

describe("IsolateTracer buffer and flush policy", () => {
  const policy = { intervalMs: 60_000, maxPoints: 3 };

  it("exports only when due (size bound or interval), and drops the batch when no collector is set", () => {
    const t = new IsolateTracer("test");
    const waits: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => waits.push(p) };
    t.run("a", {}, () => 1);
    t.run("b", {}, () => 2);
    expect(t.flush({}, ctx, policy)).toBe(false);
    expect(t.pending()).toHaveLength(2);
    t.run("c", {}, () => 3);
    // Due by size; without an endpoint the spans are dropped and nothing is sent.
    expect(t.flush({}, ctx, policy)).toBe(false);
    expect(t.pending()).toHaveLength(0);
    expect(waits).toHaveLength(0);
    // Due by time.
    t.run("d", {}, () => 4);
    expect(t.flush({}, ctx, policy, Date.now() + 61_000)).toBe(false);
    expect(t.pending()).toHaveLength(0);
  });

  it("a refusing collector costs the caller nothing: the export runs in waitUntil and settles", async () => {
    const t = new IsolateTracer("test");
    const waits: Promise<unknown>[] = [];
    for (let i = 0; i < 3; i++) t.run(`s${i}`, { attributes: { "url.path": "/v1/phi/Patient/abc" } }, () => i);
    const sent = t.flush({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", ENVIRONMENT: "test" }, { waitUntil: (p) => waits.push(p) }, policy);
    expect(sent).toBe(true);
    expect(t.pending()).toHaveLength(0);
    expect(waits).toHaveLength(1);
    await expect(waits[0]).resolves.toBeUndefined();
  });

  it("marks a failing span and rethrows; keeps at most its bound, dropping the oldest", () => {
    const t = new IsolateTracer("test");
    expect(() =>
      t.run("boom", {}, () => {
        throw new TypeError("x");
      }),
    ).toThrow(TypeError);
    expect(t.pending()[0]?.status.code).toBe(2);
    expect(attr(t.pending()[0], "error.type")).toBe("TypeError");
    for (let i = 0; i < 2100; i++) t.start("n").end();
    expect(t.pending()).toHaveLength(2048);
    expect(t.dropped).toBe(2100 + 1 - 2048);
  });

  it("traced RPC stubs call through outside a trace, pass errors unchanged and keep non-RPC members", async () => {
    const dev = await register();
    const stub = sessionStub(env, "ten_default", dev.id);
    expect(stub.id.toString()).toBe(env.SESSIONS.idFromName(dev.id).toString());
    const status = await stub.status(dev.id);
    expect(status).toMatchObject({ device_id: dev.id, online: false, connected: false });
    const thrower = tracedRpc({ fail: () => Promise.reject(new RangeError("nope")), n: 3 }, "Fake");
    await expect(thrower.fail()).rejects.toThrow(RangeError);
    expect(thrower.n).toBe(3);
  });
});
