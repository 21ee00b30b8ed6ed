// Devices: register a monitor, connect it by WebSocket with its own credentials, stream readings,
// watch them live as a clinician, trip an alarm, read the Part 11 audit, decommission.
import WebSocket from "ws";

export const name = "devices: register, stream over WebSocket, live view, alarm, audit, decommission";

/** A `ws` client that queues every JSON message and its close event. */
function open(url, token) {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const messages = [];
  let closed;
  const waiters = new Set();
  const wake = () => waiters.forEach((w) => w());
  ws.on("message", (data) => {
    messages.push(JSON.parse(String(data)));
    wake();
  });
  ws.on("close", (code) => {
    closed = { code };
    wake();
  });
  const until = (pred, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        if (pred()) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting on ${url}; got ${JSON.stringify(messages).slice(0, 400)}`));
      }, ms);
      waiters.add(check);
      check();
    });
  const ready = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.once("error", reject);
  });
  return { ws, messages, until, ready, get closed() { return closed; } };
}

export default async function (ctx) {
  const { assert } = ctx;
  const wsBase = ctx.base.replace(/^http/, "ws");
  const writer = await ctx.token("device:write");

  // 1. Register: the credentials' secret is shown once.
  const tag = Date.now().toString(36);
  const reg = await ctx.json("/v1/devices", {
    method: "POST",
    token: writer,
    body: { udi: `(01)00844588003288(21)E2E-${tag}`, model: "VitalsMonitor 3000", manufacturer: "Acme Medical", serial: `E2E-${tag}`, type: "bedside_monitor" },
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  const id = reg.body.id;
  const dup = await ctx.json("/v1/devices", { method: "POST", token: writer, body: { udi: `(01)00844588003288(21)E2E-${tag}`, model: "m", manufacturer: "Acme Medical", serial: `other-${tag}`, type: "bedside_monitor" } });
  assert.equal(dup.status, 409);

  // 2. The device's own token (role device -> device:connect, bound to this device id).
  const deviceToken = await ctx.clientToken(reg.body.credentials.client_id, reg.body.credentials.client_secret, "device:connect");

  // 3. A clinician sets alarm limits (If-Match + reason) and watches live.
  const clinician = await ctx.createClient({ name: "e2e clinician", roles: ["clinician"] });
  const clinicianToken = await ctx.clientToken(clinician.client_id, clinician.client_secret, "device:read");
  const current = await ctx.json(`/v1/devices/${id}/thresholds`, { token: clinicianToken });
  assert.equal(current.status, 200);
  const noIfMatch = await ctx.json(`/v1/devices/${id}/thresholds`, { method: "PUT", token: writer, body: { limits: { "150456": { low: 90 } }, reason: "ICU protocol" } });
  assert.equal(noIfMatch.status, 428);
  const put = await ctx.json(`/v1/devices/${id}/thresholds`, {
    method: "PUT",
    token: writer,
    headers: { "if-match": current.headers.get("etag") },
    body: { limits: { "150456": { low: 90 } }, reason: "ICU protocol 7: SpO2 below 90 %" },
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const live = open(`${wsBase}/v1/devices/${id}/live`, clinicianToken);
  await live.ready;

  // 4. The device connects through the gateway with its token and streams readings.
  const other = open(`${wsBase}/v1/devices/${id}/session`, clinicianToken);
  await assert.rejects(other.ready, (e) => e.status === 403);
  const dev = open(`${wsBase}/v1/devices/${id}/session`, deviceToken);
  await dev.ready;
  const values = [97, 96, 95, 85, 94];
  values.forEach((value, i) => dev.ws.send(JSON.stringify({ seq: i + 1, code: "150456", value, unit: "%", device_time: new Date().toISOString() })));
  dev.ws.send(JSON.stringify({ seq: 2, code: "150456", value: 96, unit: "%", device_time: new Date().toISOString() }));
  dev.ws.send(JSON.stringify({ seq: 9, code: "150456", value: 96, unit: "kg", device_time: new Date().toISOString() }));
  await dev.until(() => dev.messages.length >= 7);
  // Replies to different frames may overtake each other: match them by seq.
  assert.deepEqual(dev.messages.filter((m) => "ack" in m).map((m) => m.ack).sort(), [1, 2, 2, 3, 4, 5]);
  assert.equal(dev.messages.find((m) => "error" in m)?.error, "invalid_reading");

  // 5. The clinician saw each stored reading once, and the alarm.
  await live.until(() => live.messages.filter((m) => m.type === "reading").length >= 5 && live.messages.some((m) => m.type === "alarm"));
  assert.deepEqual(live.messages.filter((m) => m.type === "reading").map((m) => m.seq).sort(), [1, 2, 3, 4, 5]);
  const alarm = live.messages.find((m) => m.type === "alarm");
  assert.equal(alarm.seq, 4);
  assert.equal(alarm.kind, "low");
  const alarms = await ctx.json(`/v1/devices/${id}/alarms`, { token: clinicianToken });
  assert.equal(alarms.body.data.length, 1);
  const status = await ctx.json(`/v1/devices/${id}/status`, { token: clinicianToken });
  assert.equal(status.body.online, true);
  assert.equal(status.body.last_readings[0].seq, 5);
  const history = await ctx.json(`/v1/devices/${id}/readings?limit=3`, { token: clinicianToken });
  assert.equal(history.body.data.length, 3);
  assert.equal(history.body.next_cursor, 3);

  // 6. Decommission closes the session and disables the credentials.
  const decom = await ctx.json(`/v1/devices/${id}/decommission`, { method: "POST", token: writer, body: { reason: "Returned to manufacturer" } });
  assert.equal(decom.status, 200);
  await dev.until(() => dev.closed !== undefined);
  assert.equal(dev.closed.code, 4010);
  const refused = await ctx.json(`/v1/devices/${id}/readings`, { method: "POST", token: deviceToken, body: { readings: [{ seq: 6, code: "150456", value: 95, unit: "%", device_time: new Date().toISOString() }] } });
  assert.equal(refused.status, 401);
  live.ws.close();

  // 7. The Part 11 trail: who, when, old and new value, reason; the hash chain verifies.
  const audit = await ctx.json(`/v1/devices/${id}/audit?verify=true`, { token: await ctx.token("audit:read") });
  assert.equal(audit.status, 200);
  assert.deepEqual(audit.body.data.map((r) => r.action), ["device.register", "thresholds.update", "device.decommission"]);
  assert.equal(audit.body.data[1].reason, "ICU protocol 7: SpO2 below 90 %");
  assert.deepEqual(audit.body.data[1].new_value.limits, { "150456": { low: 90 } });
  assert.equal(audit.body.chain.ok, true);
}
