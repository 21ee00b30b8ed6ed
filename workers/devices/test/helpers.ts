import { env, SELF } from "cloudflare:test";
import { sealAll as sealChain, withoutGuards } from "../../../shared/testing/audit";
import { gatewayHeaders } from "../../../shared/testing/principal";

export const BASE = "https://devices.internal";

export interface Who {
  sub?: string;
  scopes: string[];
  roles?: string[];
  deviceId?: string;
  /** The principal's tenant (default: the default tenant). */
  tenantId?: string;
}

export const WRITER: Who = { sub: "cli_maker", scopes: ["device:write", "device:read"] };
export const CLINICIAN: Who = { sub: "cli_clinician", roles: ["clinician"], scopes: ["device:read"] };
export const AUDITOR: Who = { sub: "cli_auditor", scopes: ["audit:read"] };
export const asDevice = (deviceId: string): Who => ({ sub: `cli_${deviceId}`, roles: ["device"], scopes: ["device:connect"], deviceId });

export async function call(
  who: Who,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, who)), ...init.headers };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  return SELF.fetch(BASE + path, {
    method: init.method ?? "GET",
    headers,
    body: init.body === undefined ? undefined : typeof init.body === "string" ? init.body : JSON.stringify(init.body),
  });
}

let n = 0;
export function deviceInput(over: Record<string, unknown> = {}) {
  n++;
  const tag = `${Date.now().toString(36)}-${n}-${Math.random().toString(36).slice(2, 8)}`;
  return {
    udi: `(01)00844588003288(21)${tag}`,
    model: "VitalsMonitor 3000",
    manufacturer: "Acme Medical",
    serial: `SN-${tag}`,
    type: "bedside_monitor",
    ...over,
  };
}

export interface Registered {
  id: string;
  client_id: string;
  credentials: { client_id: string; client_secret: string };
}

export async function register(over: Record<string, unknown> = {}): Promise<Registered> {
  const res = await call(WRITER, "/v1/devices", { method: "POST", body: deviceInput(over) });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  return res.json<Registered>();
}

function parseOrRaw(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Collects a socket's messages so a test can await them in order. */
export class Inbox {
  readonly messages: unknown[] = [];
  private waiters: (() => void)[] = [];
  closed: { code: number; reason: string } | undefined;

  constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      this.messages.push(typeof e.data === "string" ? parseOrRaw(e.data) : e.data);
      this.wake();
    });
    ws.addEventListener("close", (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves when `pred` holds, or rejects after `ms`. */
  async until(pred: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.messages).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async count(k: number, ms?: number): Promise<unknown[]> {
    await this.until(() => this.messages.length >= k, ms);
    return this.messages.slice(0, k);
  }
}

export async function openSocket(who: Who, path: string): Promise<{ res: Response; inbox?: Inbox; ws?: WebSocket }> {
  const res = await SELF.fetch(BASE + path, { headers: { upgrade: "websocket", ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, who)) } });
  const ws = res.webSocket;
  if (!ws) return { res };
  ws.accept();
  return { res, ws, inbox: new Inbox(ws) };
}

export async function connectDevice(id: string): Promise<{ ws: WebSocket; inbox: Inbox }> {
  const { res, ws, inbox } = await openSocket(asDevice(id), `/v1/devices/${id}/session`);
  if (!ws || !inbox) throw new Error(`device socket refused: ${res.status} ${await res.text()}`);
  return { ws, inbox };
}

export async function connectViewer(id: string): Promise<{ ws: WebSocket; inbox: Inbox }> {
  const { res, ws, inbox } = await openSocket(CLINICIAN, `/v1/devices/${id}/live`);
  if (!ws || !inbox) throw new Error(`viewer socket refused: ${res.status} ${await res.text()}`);
  return { ws, inbox };
}

export function reading(seq: number, over: Record<string, unknown> = {}) {
  return { seq, code: "150456", value: 97, unit: "%", device_time: new Date(Date.UTC(2026, 10, 25, 12, 0, seq % 60)).toISOString(), ...over };
}

export const DEVICE_CHAIN = { table: "device_audit", checkpoints: "device_audit_checkpoints" };

/** Seals every pending record now, by the real sealer object's alarm. */
export function sealAll(): Promise<void> {
  return sealChain(env.DB, env.AUDIT_SEALER, DEVICE_CHAIN);
}

/** Edits records as an insider with raw database access would: guard triggers dropped meanwhile. */
export function asInsider<T>(fn: () => Promise<T>): Promise<T> {
  return withoutGuards(env.DB, DEVICE_CHAIN.table, fn);
}
