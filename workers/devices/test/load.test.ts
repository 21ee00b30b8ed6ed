import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DeviceSession } from "../src/session/device-session";
import { connectDevice, reading, register, type Inbox } from "./helpers";

const DEVICES = 50;
const READINGS = 200;

/** Sends 1..READINGS, resending every tenth one and then the last 20 again after they are acked. */
async function stream(ws: WebSocket, inbox: Inbox): Promise<void> {
  let sent = 0;
  for (let seq = 1; seq <= READINGS; seq++) {
    ws.send(JSON.stringify(reading(seq, { value: 90 + (seq % 10) })));
    sent++;
    if (seq % 10 === 0) {
      ws.send(JSON.stringify(reading(seq - 5)));
      sent++;
    }
  }
  await inbox.count(sent, 200_000);
  for (let seq = READINGS - 19; seq <= READINGS; seq++) {
    ws.send(JSON.stringify(reading(seq)));
    sent++;
  }
  await inbox.count(sent, 200_000);
}

describe("no loss under load", () => {
  it(`stores exactly ${DEVICES * READINGS} readings from ${DEVICES} concurrent devices resending duplicates`, async () => {
    const devs = await Promise.all(Array.from({ length: DEVICES }, () => register()));
    const sockets = await Promise.all(devs.map((d) => connectDevice(d.id)));
    await Promise.all(sockets.map(({ ws, inbox }) => stream(ws, inbox)));

    let total = 0;
    for (const [i, d] of devs.entries()) {
      const acks = (sockets[i]?.inbox.messages ?? []) as { ack?: number }[];
      // Every reading sent was acknowledged, each distinct seq at least once, nothing else.
      expect(acks.every((m) => typeof m.ack === "number")).toBe(true);
      expect(new Set(acks.map((m) => m.ack)).size).toBe(READINGS);
      const stats = await runInDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(d.id)), (_o: DeviceSession, state) =>
        state.storage.sql.exec<{ n: number; distinct_seq: number; lo: number; hi: number }>(
          "SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS distinct_seq, MIN(seq) AS lo, MAX(seq) AS hi FROM readings",
        ).one(),
      );
      expect(stats).toEqual({ n: READINGS, distinct_seq: READINGS, lo: 1, hi: READINGS });
      total += stats.n;
    }
    expect(total).toBe(DEVICES * READINGS);
    for (const { ws } of sockets) ws.close();
  }, 240_000);
});
