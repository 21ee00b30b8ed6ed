import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_VIEWERS, type DeviceSession } from "../src/session/device-session";
import type { SessionStore } from "../src/session/store";
import { asDevice, call, CLINICIAN, connectDevice, connectViewer, Inbox, openSocket, reading, register, WRITER } from "./helpers";

const stub = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(id));

function storedCount(id: string, seq?: number): Promise<number> {
  return runInDurableObject(stub(id), (_i: DeviceSession, state) => {
    const q = seq === undefined ? state.storage.sql.exec("SELECT COUNT(*) AS n FROM readings") : state.storage.sql.exec("SELECT COUNT(*) AS n FROM readings WHERE seq = ?", seq);
    return Number(q.one().n);
  });
}

async function setThresholds(id: string, limits: Record<string, { low?: number; high?: number }>, ifMatch: string) {
  return call(WRITER, `/v1/devices/${id}/thresholds`, { method: "PUT", body: { limits, reason: "ICU protocol 7" }, headers: { "if-match": ifMatch } });
}

describe("device session over WebSocket", () => {
  it("acknowledges a reading only once it is stored, and a resent seq again without storing it twice", async () => {
    const dev = await register();
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1, { value: 96 })));
    await inbox.count(1);
    expect(inbox.messages[0]).toEqual({ ack: 1 });
    // The ack arrived: the row is already in the object's SQLite.
    expect(await storedCount(dev.id, 1)).toBe(1);

    ws.send(JSON.stringify(reading(1, { value: 50 })));
    ws.send(JSON.stringify(reading(7)));
    await inbox.count(3);
    // Replies to different frames may overtake each other (each waits only for its own write): match by seq.
    expect(inbox.messages.slice(1)).toEqual(expect.arrayContaining([{ ack: 1 }, { ack: 7 }]));
    expect(await storedCount(dev.id)).toBe(2);
    const history = await (await call(CLINICIAN, `/v1/devices/${dev.id}/readings`)).json<{ data: { seq: number; value: number; received_at: string; device_time: string }[] }>();
    // First value wins; a gap (2..6) is allowed; server time is kept beside device time.
    expect(history.data.map((r) => [r.seq, r.value])).toEqual([[1, 96], [7, 97]]);
    expect(Date.parse(history.data[0]?.received_at ?? "")).toBeGreaterThan(Date.parse(history.data[0]?.device_time ?? ""));
    // Keep-alive is answered by the runtime (hibernation auto-response), not stored or counted as bad.
    ws.send("ping");
    await inbox.count(4);
    expect(inbox.messages[3]).toBe("pong");
    expect(await storedCount(dev.id)).toBe(2);
    ws.close();
  });

  it("answers bad frames with an error frame, stores none, and closes a flood with 1008", async () => {
    const dev = await register();
    const { ws, inbox } = await connectDevice(dev.id);
    const bad: (string | ArrayBuffer)[] = [
      "not json",
      JSON.stringify(reading(1, { code: "999999" })),
      JSON.stringify(reading(2, { unit: "mm[Hg]" })),
      JSON.stringify(reading(3, { value: 180 })),
      JSON.stringify(reading(4, { device_time: "yesterday" })),
      JSON.stringify({ ...reading(5), extra: true }),
      JSON.stringify(reading(-1)),
      new Uint8Array([1, 2, 3]).buffer,
      "x".repeat(5000),
    ];
    for (const f of bad) ws.send(f);
    const got = (await inbox.count(bad.length)) as { error: string; seq?: number }[];
    expect(got.map((m) => m.error).sort()).toEqual(
      ["invalid_json", "unsupported_frame", "frame_too_large", ...Array<string>(6).fill("invalid_reading")].sort(),
    );
    // The seq of a refused reading is echoed when it is a number, so the device knows which one failed.
    expect(got.filter((m) => m.error === "invalid_reading").map((m) => Number(m.seq)).sort((x, y) => x - y)).toEqual([-1, 1, 2, 3, 4, 5]);
    expect(await storedCount(dev.id)).toBe(0);
    // The socket still works for good frames.
    ws.send(JSON.stringify(reading(10)));
    await inbox.until(() => inbox.messages.some((m) => (m as { ack?: number }).ack === 10));
    // BAD_FRAME_LIMIT is 20 per window: the 21st bad frame closes the socket (RFC 6455 7.4.1).
    for (let i = 0; i < 15; i++) ws.send("{");
    await inbox.until(() => inbox.closed !== undefined);
    expect(inbox.closed?.code).toBe(1008);
    expect(await storedCount(dev.id)).toBe(1);
  });

  it("refuses another device's token, a token bound to no device, unknown devices and plain HTTP", async () => {
    const a = await register();
    const b = await register();
    const other = await openSocket(asDevice(b.id), `/v1/devices/${a.id}/session`);
    expect(other.res.status).toBe(403);
    expect(await other.res.json()).toMatchObject({ code: "device_mismatch" });
    const unbound = await openSocket({ sub: "cli_admin", scopes: ["device:connect"] }, `/v1/devices/${a.id}/session`);
    expect(unbound.res.status).toBe(403);
    const noScope = await openSocket({ ...asDevice(a.id), scopes: ["device:read"] }, `/v1/devices/${a.id}/session`);
    expect(noScope.res.status).toBe(403);
    const ghost = "dev_nothingHereAtAll1";
    expect((await openSocket(asDevice(ghost), `/v1/devices/${ghost}/session`)).res.status).toBe(404);
    expect((await call(asDevice(a.id), `/v1/devices/${a.id}/session`)).status).toBe(426);
    const post = await call(asDevice(b.id), `/v1/devices/${a.id}/readings`, { method: "POST", body: { readings: [reading(1)] } });
    expect(post.status).toBe(403);
    expect(await storedCount(a.id)).toBe(0);
    const viewerGhost = await openSocket(CLINICIAN, `/v1/devices/${ghost}/live`);
    expect(viewerGhost.res.status).toBe(404);
  });

  it("pushes stored readings and threshold alarms to live viewers, and lists alarms", async () => {
    const dev = await register();
    const viewer = await connectViewer(dev.id);
    const other = await connectViewer(dev.id);
    const put = await setThresholds(dev.id, { "150456": { low: 90 }, "8867-4": { low: 40, high: 130 } }, '"0"');
    expect(put.status).toBe(200);
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1, { value: 95 })));
    ws.send(JSON.stringify(reading(1, { value: 95 })));
    ws.send(JSON.stringify(reading(2, { value: 85 })));
    ws.send(JSON.stringify(reading(3, { code: "8867-4", unit: "/min", value: 150 })));
    await inbox.count(4);
    await viewer.inbox.until(() => viewer.inbox.messages.filter((m) => (m as { type: string }).type !== "presence").length >= 5);
    const events = viewer.inbox.messages.filter((m) => (m as { type: string }).type !== "presence") as Record<string, unknown>[];
    // Events of one frame keep their order (reading, then its alarm); frames are sorted by seq here.
    events.sort((a, b) => Number(a.seq) - Number(b.seq));
    expect(events.map((e) => [e.type, e.seq])).toEqual([
      ["reading", 1],
      ["reading", 2],
      ["alarm", 2],
      ["reading", 3],
      ["alarm", 3],
    ]);
    expect(events[2]).toMatchObject({ device_id: dev.id, kind: "low", limit: 90, value: 85, thresholds_version: 1 });
    expect(events[4]).toMatchObject({ kind: "high", limit: 130 });
    await other.inbox.until(() => other.inbox.messages.some((m) => (m as { type: string }).type === "alarm"));
    // Viewers are read-only.
    viewer.ws.send(JSON.stringify(reading(9)));
    await viewer.inbox.until(() => viewer.inbox.messages.some((m) => (m as { error?: string }).error === "read_only"));
    expect(await storedCount(dev.id, 9)).toBe(0);

    const alarms = await (await call(CLINICIAN, `/v1/devices/${dev.id}/alarms?limit=1`)).json<{ data: { seq: number }[]; next_cursor: number }>();
    expect(alarms.data).toHaveLength(1);
    const next = await (await call(CLINICIAN, `/v1/devices/${dev.id}/alarms?after=${alarms.next_cursor}`)).json<{ data: { seq: number }[]; next_cursor: null }>();
    expect(next).toMatchObject({ data: [{}], next_cursor: null });
    // Two pages of one alarm each; frames may be stored in either order, so the pair is compared as a set.
    expect([...alarms.data, ...next.data].map((a) => a.seq).sort()).toEqual([2, 3]);
    const status = await (await call(CLINICIAN, `/v1/devices/${dev.id}/status`)).json<Record<string, unknown>>();
    expect(status).toMatchObject({ online: true, connected: true, thresholds_version: 1 });
    expect((status.last_readings as { code: string; seq: number }[]).map((r) => [r.code, r.seq])).toEqual([["150456", 2], ["8867-4", 3]]);
    for (const s of [ws, viewer.ws, other.ws]) s.close();
  });

  it(`takes at most ${MAX_VIEWERS} live viewers per device (each reading is sent to every one): one more is refused with 429 until one leaves`, async () => {
    const dev = await register();
    const viewers = await Promise.all(Array.from({ length: MAX_VIEWERS }, () => connectViewer(dev.id)));
    const extra = await openSocket(CLINICIAN, `/v1/devices/${dev.id}/live`);
    expect(extra.res.status).toBe(429);
    expect(extra.res.headers.get("content-type")).toContain("application/problem+json");
    expect(await extra.res.json()).toMatchObject({ status: 429, code: "too_many_viewers" });
    // The device itself is never refused for its viewers, and each of them gets its readings.
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1)));
    await inbox.count(1);
    await Promise.all(viewers.map((v) => v.inbox.until(() => v.inbox.messages.some((m) => (m as { type?: string }).type === "reading"))));
    // A viewer that leaves frees its place.
    const first = viewers[0];
    if (!first) throw new Error("no viewer");
    first.ws.close(1000, "bye");
    await first.inbox.until(() => first.inbox.closed !== undefined);
    const again = await connectViewer(dev.id);
    for (const v of [...viewers.slice(1), again]) v.ws.close();
    ws.close();
  });

  it("marks a silent device offline by the object's alarm and back online when it is heard from", async () => {
    const dev = await register();
    const viewer = await connectViewer(dev.id);
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1)));
    await inbox.count(1);
    // Not yet silent long enough: the alarm re-arms and the device stays online.
    expect(await runDurableObjectAlarm(stub(dev.id))).toBe(true);
    expect((await (await call(CLINICIAN, `/v1/devices/${dev.id}/status`)).json<{ online: boolean }>()).online).toBe(true);
    // Silence longer than OFFLINE_AFTER_SECONDS (last seen moved back through the object's own store).
    await runInDurableObject(stub(dev.id), (i: DeviceSession) => {
      (i as unknown as { store: SessionStore }).store.setMeta("last_seen", String(Date.now() - 10 * 60_000));
    });
    expect(await runDurableObjectAlarm(stub(dev.id))).toBe(true);
    const off = await (await call(CLINICIAN, `/v1/devices/${dev.id}/status`)).json<{ online: boolean; connected: boolean }>();
    expect(off).toMatchObject({ online: false, connected: true });
    await viewer.inbox.until(() => viewer.inbox.messages.some((m) => (m as { online?: boolean }).online === false));
    ws.send(JSON.stringify(reading(2)));
    await inbox.count(2);
    expect((await (await call(CLINICIAN, `/v1/devices/${dev.id}/status`)).json<{ online: boolean }>()).online).toBe(true);
    const log = await runInDurableObject(stub(dev.id), (i: DeviceSession) => i.presenceLog());
    expect(log.map((p) => [p.online, p.reason])).toEqual([[true, "reading"], [false, "silent"], [true, "connected"]]);
    const recent = await (await call(CLINICIAN, `/v1/devices/${dev.id}/status`)).json<{ recent_presence: { online: boolean; reason: string }[] }>();
    expect(recent.recent_presence.map((p) => p.reason)).toEqual(["reading", "silent", "connected"]);
    // A clean disconnect is a presence change too.
    ws.close(1000, "bye");
    await viewer.inbox.until(() => viewer.inbox.messages.some((m) => (m as { reason?: string }).reason === "disconnected"));
    viewer.ws.close();
  });

  it("keeps readings, dedup and thresholds when the object is evicted and re-created", async () => {
    const dev = await register();
    expect((await setThresholds(dev.id, { "150456": { low: 92 } }, '"0"')).status).toBe(200);
    const first = await connectDevice(dev.id);
    for (let s = 1; s <= 5; s++) first.ws.send(JSON.stringify(reading(s)));
    await first.inbox.count(5);
    await abortAllDurableObjects();
    // A new instance: nothing in memory, everything in its SQLite.
    const again = await connectDevice(dev.id);
    again.ws.send(JSON.stringify(reading(3)));
    again.ws.send(JSON.stringify(reading(6, { value: 80 })));
    await again.inbox.count(2);
    expect(again.inbox.messages).toEqual(expect.arrayContaining([{ ack: 3 }, { ack: 6 }]));
    expect(await storedCount(dev.id)).toBe(6);
    const alarms = await (await call(CLINICIAN, `/v1/devices/${dev.id}/alarms`)).json<{ data: { seq: number; limit: number }[] }>();
    expect(alarms.data).toMatchObject([{ seq: 6, limit: 92 }]);
    again.ws.close();
  });
});

describe("thresholds reach the object", () => {
  it("catches up from the registry when a device connects, if a push was missed", async () => {
    const dev = await register();
    expect((await setThresholds(dev.id, { "150456": { low: 93 } }, '"0"')).status).toBe(200);
    // Simulate a lost push: the object forgets its copy (in SQLite, then a fresh instance without memory of it).
    await runInDurableObject(stub(dev.id), (_i: DeviceSession, state) => {
      state.storage.sql.exec("DELETE FROM meta WHERE key = 'thresholds'");
    });
    await abortAllDurableObjects();
    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(1, { value: 91 })));
    await inbox.count(1);
    const alarms = await (await call(CLINICIAN, `/v1/devices/${dev.id}/alarms`)).json<{ data: { limit: number; thresholds_version: number }[] }>();
    expect(alarms.data).toMatchObject([{ limit: 93, thresholds_version: 1 }]);
    // An older version never replaces a newer one.
    expect(await runInDurableObject(stub(dev.id), (i: DeviceSession) => i.applyThresholds(0, {}))).toBe(1);
    ws.close();
  });
});

describe("readings over HTTP and history", () => {
  it("stores a batch all or nothing with the same dedup and pages history", async () => {
    const dev = await register();
    const me = asDevice(dev.id);
    const path = `/v1/devices/${dev.id}/readings`;
    const bad = await call(me, path, { method: "POST", body: { readings: [reading(1), reading(2, { unit: "kg" })] } });
    expect(bad.status).toBe(400);
    expect(await storedCount(dev.id)).toBe(0);
    const batch = Array.from({ length: 30 }, (_, i) => reading(i + 1, i % 2 ? { code: "8867-4", unit: "/min", value: 70 + i } : {}));
    const ok = await call(me, path, { method: "POST", body: { readings: batch } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ stored: 30, duplicates: 0, alarms: 0 });
    const again = await call(me, path, { method: "POST", body: { readings: batch.slice(0, 5) } });
    expect(await again.json()).toEqual({ acks: [1, 2, 3, 4, 5], stored: 0, duplicates: 5, alarms: 0 });
    expect(await storedCount(dev.id)).toBe(30);
    expect((await call(me, path, { method: "POST", body: { readings: [] } })).status).toBe(400);
    expect((await call(me, path, { method: "POST", body: "{" })).status).toBe(400);

    const page1 = await (await call(CLINICIAN, `${path}?limit=10&code=8867-4`)).json<{ data: { seq: number }[]; next_cursor: number }>();
    expect(page1.data).toHaveLength(10);
    expect(page1.data.every((r) => r.seq % 2 === 0)).toBe(true);
    const page2 = await (await call(CLINICIAN, `${path}?limit=10&code=8867-4&after=${page1.next_cursor}`)).json<{ data: { seq: number }[]; next_cursor: number | null }>();
    expect(page2.data.map((r) => r.seq)).toEqual([22, 24, 26, 28, 30]);
    expect(page2.next_cursor).toBeNull();
    const since = new Date(Date.UTC(2026, 10, 25, 12, 0, 10)).toISOString();
    const until = new Date(Date.UTC(2026, 10, 25, 12, 0, 12)).toISOString();
    const ranged = await (await call(CLINICIAN, `${path}?since=${since}&until=${until}`)).json<{ data: { seq: number }[] }>();
    expect(ranged.data.map((r) => r.seq)).toEqual([10, 11]);
    expect((await call(CLINICIAN, `${path}?limit=0`)).status).toBe(400);
    expect((await call(CLINICIAN, `/v1/devices/dev_nothingHereAtAll1/readings`)).status).toBe(404);
    expect((await call(CLINICIAN, `/v1/devices/dev_nothingHereAtAll1/status`)).status).toBe(404);
    expect((await call(CLINICIAN, `/v1/devices/dev_nothingHereAtAll1/alarms`)).status).toBe(404);
  });
});

describe("device_time: an instant whose stored UTC form has a four-digit year", () => {
  // With an offset, these two name instants in the years 10000 and -1, whose ISO forms (+010000-..., -000001-...) sort wrongly as text.
  const late = "9999-12-31T23:00:00-05:00";
  const early = "0000-01-01T00:00:00+05:00";

  it("refuses a time outside 0000-01-01T00:00:00Z..9999-12-31T23:59:59.999Z over HTTP (400 naming the field, nothing of the batch stored) and on the socket (the error frame of any invalid reading)", async () => {
    const dev = await register();
    const path = `/v1/devices/${dev.id}/readings`;
    for (const t of [late, early]) {
      const res = await call(asDevice(dev.id), path, { method: "POST", body: { readings: [reading(1), reading(2, { device_time: t })] } });
      expect(res.status).toBe(400);
      const body = await res.json<{ code: string; errors: { location: string; path: string; message: string }[] }>();
      expect(body.code).toBe("invalid_request");
      expect(body.errors.map((e) => [e.location, e.path])).toEqual([["json", "readings.1.device_time"]]);
      expect(body.errors[0]?.message).toContain("9999-12-31T23:59:59.999Z");
    }
    expect(await storedCount(dev.id)).toBe(0);

    const { ws, inbox } = await connectDevice(dev.id);
    ws.send(JSON.stringify(reading(3, { device_time: late })));
    ws.send(JSON.stringify(reading(4, { device_time: early })));
    const got = (await inbox.count(2)) as { error: string; seq: number; issues: { path: string }[] }[];
    expect(got.map((m) => [m.error, m.seq, m.issues.map((i) => i.path)]).sort()).toEqual([
      ["invalid_reading", 3, ["device_time"]],
      ["invalid_reading", 4, ["device_time"]],
    ]);
    expect(await storedCount(dev.id)).toBe(0);
    ws.close();
  });

  it("accepts the window's edges (a clock reset to 1970-01-01 in any offset included), stores them in UTC, and answers since/until ranges in time order", async () => {
    const dev = await register();
    const path = `/v1/devices/${dev.id}/readings`;
    const times: [number, string][] = [
      [1, "0000-01-01T00:00:00Z"],
      [2, "1970-01-01T00:00:00Z"],
      // A device whose clock reset to midnight 1970 local time, east of UTC: an instant before 1970.
      [3, "1970-01-01T00:00:00+14:00"],
      [4, "2026-11-25T12:00:00+01:00"],
      [5, "9999-12-31T18:59:59.999-05:00"],
    ];
    const res = await call(asDevice(dev.id), path, { method: "POST", body: { readings: times.map(([seq, t]) => reading(seq, { device_time: t })) } });
    expect(res.status).toBe(200);
    const all = await (await call(CLINICIAN, path)).json<{ data: { seq: number; device_time: string }[] }>();
    expect(all.data.map((r) => r.device_time)).toEqual([
      "0000-01-01T00:00:00.000Z",
      "1970-01-01T00:00:00.000Z",
      "1969-12-31T10:00:00.000Z",
      "2026-11-25T11:00:00.000Z",
      "9999-12-31T23:59:59.999Z",
    ]);
    const range = async (q: string) => (await (await call(CLINICIAN, `${path}?${q}`)).json<{ data: { seq: number }[] }>()).data.map((r) => r.seq);
    expect(await range(`since=${encodeURIComponent("1970-01-01T00:00:00+14:00")}`)).toEqual([2, 3, 4, 5]);
    expect(await range(`until=${encodeURIComponent("1970-01-01T00:00:00Z")}`)).toEqual([1, 3]);
    expect(await range(`since=${encodeURIComponent("2000-01-01T00:00:00-05:00")}&until=${encodeURIComponent("9999-12-31T23:59:59.999Z")}`)).toEqual([4]);
    for (const [name, t] of [
      ["since", late],
      ["until", late],
      ["since", early],
      ["until", early],
    ] as const) {
      const bad = await call(CLINICIAN, `${path}?${name}=${encodeURIComponent(t)}`);
      expect(bad.status, `${name}=${t}`).toBe(400);
      expect((await bad.json<{ errors: { location: string; path: string }[] }>()).errors.map((e) => [e.location, e.path])).toEqual([["query", name]]);
    }
  });
});

/** The real auth worker (token service + gateway) in front of this one. */
const GW = "https://gateway.test";

async function deviceToken(clientId: string, secret: string, scope?: string): Promise<{ status: number; token?: string; scope?: string; error?: string }> {
  const res = await env.GATEWAY.fetch(`${GW}/oauth/token`, {
    method: "POST",
    headers: { authorization: `Basic ${btoa(`${clientId}:${secret}`)}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", ...(scope === undefined ? {} : { scope }) }),
  });
  const body = await res.json<{ access_token?: string; scope?: string; error?: string }>();
  return { status: res.status, token: body.access_token, scope: body.scope, error: body.error };
}

describe("device credentials through the real gateway", () => {
  it("refuses a SMART scope whose permissions are named like an object's built-in property with 400 invalid_scope, not a 500", async () => {
    const a = await register();
    for (const perms of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]) {
      const tok = await deviceToken(a.credentials.client_id, a.credentials.client_secret, `system/Patient.${perms}`);
      expect([perms, tok.status, tok.error]).toEqual([perms, 400, "invalid_scope"]);
    }
    // The device's own scope is still granted.
    expect(await deviceToken(a.credentials.client_id, a.credentials.client_secret, "device:connect")).toMatchObject({ status: 200, scope: "device:connect" });
  });

  it("a device's own token opens its session and posts its readings, never another device's", async () => {
    const a = await register();
    const b = await register();
    const tok = await deviceToken(a.credentials.client_id, a.credentials.client_secret);
    expect(tok.status).toBe(200);
    expect(tok.scope).toBe("device:connect");
    const auth = { authorization: `Bearer ${tok.token ?? ""}` };

    const own = await env.GATEWAY.fetch(`${GW}/v1/devices/${a.id}/session`, { headers: { upgrade: "websocket", ...auth } });
    expect(own.status).toBe(101);
    const ws = own.webSocket;
    if (!ws) throw new Error("no socket");
    ws.accept();
    const inbox = new Inbox(ws);
    ws.send(JSON.stringify(reading(1)));
    await inbox.count(1);
    expect(inbox.messages[0]).toEqual({ ack: 1 });

    const other = await env.GATEWAY.fetch(`${GW}/v1/devices/${b.id}/session`, { headers: { upgrade: "websocket", ...auth } });
    expect(other.status).toBe(403);
    expect(await other.json()).toMatchObject({ code: "device_mismatch" });
    const otherPost = await env.GATEWAY.fetch(`${GW}/v1/devices/${b.id}/readings`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ readings: [reading(1)] }),
    });
    expect(otherPost.status).toBe(403);
    const ownPost = await env.GATEWAY.fetch(`${GW}/v1/devices/${a.id}/readings`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ readings: [reading(1), reading(2)] }),
    });
    expect(await ownPost.json()).toMatchObject({ stored: 1, duplicates: 1 });
    // A device token cannot read the registry or history (device:read is not its scope).
    expect((await env.GATEWAY.fetch(`${GW}/v1/devices/${a.id}/readings`, { headers: auth })).status).toBe(403);
    ws.close();
  });
});
