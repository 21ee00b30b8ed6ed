import { DurableObject } from "cloudflare:workers";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { IsolateTracer, parseTraceparent } from "../../../../shared/manual-spans";
import { counter } from "../../../../shared/metrics";
import { scheduleMetricsFlush } from "../../../../shared/metrics-export";
import type { TelemetryEnv } from "../../../../shared/telemetry/target";
import { devicesConfig } from "../config";
import { breach, presenceStep, spendBadFrame, type FrameBudget } from "../policy";
import type { Alarm, AlarmsQuery, IngestResult, Reading, ReadingInput, ReadingsQuery, Status } from "../schemas/reading";
import type { Limits } from "../schemas/thresholds";
import { ThresholdStore } from "../thresholds";
import { parseFrame, type ErrorFrame } from "./frames";
import { SessionStore } from "./store";

/** Per-socket state kept with the socket itself, so it survives hibernation. */
interface Attachment extends FrameBudget {
  role: "device" | "viewer";
  /** `traceparent` of the request that opened the socket: each frame's span links to it. */
  tp?: string;
}

export type IngestOutcome = { ok: true; result: IngestResult } | { ok: false; code: "device_decommissioned" };

/** Internal headers the worker sets when it hands an upgrade to the object (never from a client). */
export const ROLE_HEADER = "x-session-role";
export const DEVICE_HEADER = "x-session-device";
export const TENANT_HEADER = "x-session-tenant";

/** Application close code (RFC 6455 7.4.2, 4000-4999 private use). */
export const CLOSE_DECOMMISSIONED = 4010;
export const CLOSE_REPLACED = 4001;

/** Live viewers one device takes at once: every stored reading, alarm and presence change is sent to each. */
export const MAX_VIEWERS = 100;

const readingsStored = counter("devices_readings_total", "Readings received, by outcome");
const framesRejected = counter("devices_frames_rejected_total", "Device frames refused, by error");
const alarmsRaised = counter("devices_alarms_total", "Threshold alarms raised, by kind");
const presenceChanges = counter("device_presence_changes_total", "Devices going online or offline, by status and reason");

/** Hibernated handlers run outside otel-cf-workers: their spans are recorded here (shared/manual-spans.ts). */
export const sessionTracer = new IsolateTracer("devices");

/**
 * After a hibernated handler: its spans, and this isolate's metrics when an export is due. The session's counters
 * (readings, rejected frames, alarms, presence changes) live in the object's isolate, which may serve no Hono
 * request at all; without this they would never leave it (and DevicesGoingOffline could never fire).
 */
function flushTelemetry(env: unknown, ctx: DurableObjectState): void {
  sessionTracer.flush(env as TelemetryEnv, ctx);
  scheduleMetricsFlush(env as TelemetryEnv, ctx, "devices");
}

/**
 * One SQLite-backed Durable Object per device: its readings, alarms, presence and
 * active thresholds, and the hibernating WebSockets of the device (at most one)
 * and of the clinicians watching it. Nothing lives only in memory.
 */
export class DeviceSession extends DurableObject<Env> {
  private readonly store: SessionStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.store = new SessionStore(ctx.storage.sql);
    this.store.migrate();
    // Answered by the runtime without waking the object (hibernation keeps idle sessions free).
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  ping(): string {
    return "ok";
  }

  /** WebSocket upgrades handed over by the worker after its access checks. */
  override async fetch(request: Request): Promise<Response> {
    const role = request.headers.get(ROLE_HEADER) === "device" ? "device" : "viewer";
    const deviceId = request.headers.get(DEVICE_HEADER) ?? "";
    const tenantId = request.headers.get(TENANT_HEADER);
    // Fail closed: the worker always names the tenant it checked the device in.
    if (!tenantId) return new Response("tenant missing", { status: 400 });
    // The registry (D1) is the source of thresholds: catch up on connect in case a push was missed.
    if (role === "device") {
      const t = await new ThresholdStore(this.env.DB, tenantId).current(deviceId);
      this.applyThresholds(t.version, t.limits);
    }
    // Checked after the await: a decommission that landed meanwhile still wins.
    if (this.store.getMeta("decommissioned") === "1") return new Response("decommissioned", { status: 410 });
    if (role === "viewer" && this.ctx.getWebSockets("viewer").length >= MAX_VIEWERS) return new Response("too many viewers", { status: 429 });
    this.store.setMeta("device_id", deviceId);
    const { 0: client, 1: server } = new WebSocketPair();
    if (role === "device") {
      // One live session per device: a reconnect replaces a half-open older socket.
      for (const old of this.ctx.getWebSockets("device")) old.close(CLOSE_REPLACED, "replaced by a new session");
    }
    this.ctx.acceptWebSocket(server, [role]);
    const tp = parseTraceparent(request.headers.get("traceparent")) ? (request.headers.get("traceparent") ?? undefined) : undefined;
    server.serializeAttachment({ role, bad: 0, windowStart: Date.now(), tp } satisfies Attachment);
    if (role === "device") this.touch(Date.now(), "connected");
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * The one handler of every frame. Each frame is one span (`DeviceSession message`),
   * linked to the request that opened the socket.
   */
  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    // Frames already queued when this side closed the socket (a flood, a decommission) are dropped.
    if (ws.readyState !== WebSocket.READY_STATE_OPEN) return;
    const att = ws.deserializeAttachment() as Attachment;
    const link = parseTraceparent(att.tp);
    sessionTracer.run(
      "DeviceSession message",
      { kind: SpanKind.CONSUMER, attributes: { "messaging.system": "websocket", "messaging.operation.type": "process", "devices.socket.role": att.role }, links: link ? [link] : [] },
      (span) => {
        const parsed: ReturnType<typeof parseFrame> =
          att.role === "device" ? parseFrame(message) : { ok: false, frame: { error: "read_only", detail: "The live feed is read-only." } };
        if (!parsed.ok) {
          span.setAttribute("devices.frame.error", parsed.frame.error);
          span.setStatus({ code: SpanStatusCode.ERROR });
          this.rejectFrame(ws, att, parsed.frame);
          return;
        }
        const outcome = this.ingest([parsed.reading]);
        // The SQLite write above is synchronous and the output gate holds this send until it
        // is durable: an ack always means stored (or already stored, for a resent seq).
        if (outcome.ok) {
          span.setAttributes({ "devices.readings.stored": outcome.result.stored, "devices.readings.duplicates": outcome.result.duplicates, "devices.alarms.raised": outcome.result.alarms });
          ws.send(JSON.stringify({ ack: parsed.reading.seq }));
        } else {
          span.setAttribute("devices.frame.error", outcome.code);
          ws.close(CLOSE_DECOMMISSIONED, "device decommissioned");
        }
      },
    );
    flushTelemetry(this.env, this.ctx);
  }

  override webSocketClose(ws: WebSocket, code: number, _reason: string, _wasClean: boolean): void {
    this.closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, "closing");
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role !== "device") return;
    const others = this.ctx.getWebSockets("device").filter((s) => s !== ws);
    if (others.length === 0 && this.store.getMeta("online") === "1") this.setPresence(false, "disconnected");
    flushTelemetry(this.env, this.ctx);
  }

  override webSocketError(ws: WebSocket, _error: unknown): void {
    this.webSocketClose(ws, 1011, "error", false);
  }

  /** The offline check: marks a silent device offline (DESIGN.md, Devices). */
  override async alarm(): Promise<void> {
    const span = sessionTracer.start("DeviceSession alarm", { attributes: { "devices.check": "offline" } });
    try {
      await this.offlineCheck(span);
    } finally {
      span.end();
      flushTelemetry(this.env, this.ctx);
    }
  }

  private async offlineCheck(span: { setAttribute(k: string, v: string): unknown }): Promise<void> {
    const cfg = devicesConfig(this.env);
    const lastSeen = this.store.getMeta("last_seen");
    const step = presenceStep(this.store.getMeta("online") === "1", lastSeen ? Number(lastSeen) : null, Date.now(), cfg.OFFLINE_AFTER_SECONDS * 1000);
    span.setAttribute("devices.check.outcome", step.kind);
    if (step.kind === "mark_offline") this.setPresence(false, "silent");
    else if (step.kind === "rearm") await this.ctx.storage.setAlarm(step.at);
  }

  /** The HTTP batch path: the same store, dedup and alarms as the socket. */
  ingestBatch(readings: ReadingInput[]): IngestOutcome {
    return this.ingest(readings);
  }

  history(q: ReadingsQuery): Reading[] {
    return this.store.history(q);
  }

  alarms(q: AlarmsQuery): Alarm[] {
    return this.store.alarms(q);
  }

  status(deviceId: string): Status {
    const lastSeen = this.store.getMeta("last_seen");
    return {
      device_id: deviceId,
      online: this.store.getMeta("online") === "1",
      last_seen: lastSeen ? new Date(Number(lastSeen)).toISOString() : null,
      connected: this.ctx.getWebSockets("device").length > 0,
      thresholds_version: this.store.thresholds().version,
      last_readings: this.store.lastReadings(),
      recent_presence: this.store.presenceLog(10),
    };
  }

  presenceLog(limit = 50): { online: boolean; reason: string; at: string }[] {
    return this.store.presenceLog(limit);
  }

  /**
   * Activates thresholds committed in D1; an older version never replaces a newer one. A decommissioned object
   * takes none: it refuses every reading, and an erased one keeps only its mark (a connect or a push that passed
   * the registry before the erasure was recorded there must not bring limits back).
   */
  applyThresholds(version: number, limits: Limits): number {
    const current = this.store.thresholds();
    if (version > current.version && this.store.getMeta("decommissioned") !== "1") this.store.setMeta("thresholds", JSON.stringify({ version, limits }));
    return Math.max(version, current.version);
  }

  /** Refuses all further readings and closes every socket. */
  decommission(): void {
    this.store.setMeta("decommissioned", "1");
    for (const ws of this.ctx.getWebSockets()) this.closeQuietly(ws, CLOSE_DECOMMISSIONED, "device decommissioned");
    if (this.store.getMeta("online") === "1") this.setPresence(false, "decommissioned");
  }

  /**
   * Offboarding of the device's tenant: closes every socket, then deletes everything the object stored
   * (readings, alarms, presence, thresholds, its alarm), so no copy of the tenant's vitals stays here.
   * What remains is the mark that refuses anything sent later (decommissioned) and what was erased, which this
   * returns. Calling it again erases nothing more and answers the first erasure's counts: the caller records them
   * only once its D1 batch commits, so its retry (or an overlapping call) must not record zeros.
   */
  async erase(): Promise<{ readings: number; alarms: number }> {
    const kept = this.store.getMeta("erased");
    if (kept) return JSON.parse(kept) as { readings: number; alarms: number };
    const erased = this.store.counts();
    for (const ws of this.ctx.getWebSockets()) this.closeQuietly(ws, CLOSE_DECOMMISSIONED, "device data erased");
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.store.reset();
    // deleteAll() wiped the meta table too, so the counts are kept only now, with the mark (two writes with no
    // await between them commit together). What remains: a crash between the wipe and these writes leaves an
    // empty object not yet marked, and the next call erases it again and answers zeros.
    this.store.setMeta("decommissioned", "1");
    this.store.setMeta("erased", JSON.stringify(erased));
    return erased;
  }

  private ingest(readings: ReadingInput[]): IngestOutcome {
    if (this.store.getMeta("decommissioned") === "1") return { ok: false, code: "device_decommissioned" };
    const now = Date.now();
    const receivedAt = new Date(now).toISOString();
    const { version, limits } = this.store.thresholds();
    const stored: Reading[] = [];
    const raised: Alarm[] = [];
    this.ctx.storage.transactionSync(() => {
      for (const r of readings) {
        const reading = this.store.insertReading(r, receivedAt);
        if (!reading) continue;
        stored.push(reading);
        const b = breach(reading.value, limits[reading.code]);
        if (b) {
          const { received_at: _, ...rest } = reading;
          raised.push(this.store.insertAlarm({ ...rest, kind: b.kind, limit: b.limit, thresholds_version: version, raised_at: receivedAt }));
        }
      }
    });
    this.touch(now, "reading");
    readingsStored.add(stored.length, { outcome: "stored" });
    readingsStored.add(readings.length - stored.length, { outcome: "duplicate" });
    for (const a of raised) alarmsRaised.add(1, { kind: a.kind });
    const deviceId = this.store.getMeta("device_id");
    for (const r of stored) this.broadcast({ type: "reading", device_id: deviceId, ...r });
    for (const a of raised) this.broadcast({ type: "alarm", device_id: deviceId, ...a });
    return {
      ok: true,
      result: { acks: readings.map((r) => r.seq), stored: stored.length, duplicates: readings.length - stored.length, alarms: raised.length },
    };
  }

  /** Last seen now; an offline device comes back online and the offline check is armed. */
  private touch(now: number, reason: string): void {
    this.store.setMeta("last_seen", String(now));
    if (this.store.getMeta("online") !== "1") {
      this.setPresence(true, reason);
      void this.ctx.storage.setAlarm(now + devicesConfig(this.env).OFFLINE_AFTER_SECONDS * 1000);
    }
  }

  private setPresence(online: boolean, reason: string): void {
    const at = new Date().toISOString();
    this.store.setMeta("online", online ? "1" : "0");
    this.store.recordPresence(online, reason, at);
    presenceChanges.add(1, { status: online ? "online" : "offline", reason });
    this.broadcast({ type: "presence", device_id: this.store.getMeta("device_id"), online, reason, at });
  }

  private rejectFrame(ws: WebSocket, att: Attachment, frame: ErrorFrame): void {
    framesRejected.add(1, { error: frame.error });
    const cfg = devicesConfig(this.env);
    const { budget, close } = spendBadFrame(att, Date.now(), cfg.BAD_FRAME_LIMIT, cfg.BAD_FRAME_WINDOW_SECONDS * 1000);
    ws.serializeAttachment({ ...att, ...budget } satisfies Attachment);
    ws.send(JSON.stringify(frame));
    // RFC 6455 7.4.1: 1008 policy violation.
    if (close) this.closeQuietly(ws, 1008, "too many invalid messages");
  }

  private broadcast(event: Record<string, unknown>): void {
    const text = JSON.stringify(event);
    for (const ws of this.ctx.getWebSockets("viewer")) {
      try {
        ws.send(text);
      } catch {
        // A viewer that went away is cleaned up by its close event.
      }
    }
  }

  private closeQuietly(ws: WebSocket, code: number, reason: string): void {
    try {
      ws.close(code, reason);
    } catch {
      // Already closed.
    }
  }
}
