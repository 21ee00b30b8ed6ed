import { env, SELF } from "cloudflare:test";
import { sealAll as sealChain, withoutGuards } from "../../../shared/testing/audit";
import { gatewayHeaders } from "../../../shared/testing/principal";

export const BASE = "https://payments.internal";
export const ALL_SCOPES = ["payment:read", "payment:write", "payment:refund", "audit:read"];
export const YEAR = new Date().getUTCFullYear() + 3;

export const CARDS = {
  visa: "4242424242424242",
  mastercard: "5555555555554444",
  amex: "378282246310005",
  discover: "6011111111111117",
  declined: "4000000000000002",
  insufficientFunds: "4000000000009995",
  expired: "4000000000000069",
  processorError: "4000000000000119",
} as const;

export interface Caller {
  sub?: string;
  scopes?: string[];
  roles?: string[];
  /** The principal's tenant (default: the default tenant). */
  tenantId?: string;
}

let counter = 0;
/** A fresh idempotency key per call unless one is given. */
export const newKey = () => `test-key-${Date.now()}-${counter++}-${Math.random().toString(36).slice(2)}`;

export async function call(
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; key?: string | null; caller?: Caller; headers?: Record<string, string>; via?: Fetcher } = {},
): Promise<Response> {
  const h: Record<string, string> = {
    ...(await gatewayHeaders(env.GATEWAY_HMAC_KEY, {
      sub: opts.caller?.sub ?? "cli_maker",
      scopes: opts.caller?.scopes ?? ALL_SCOPES,
      roles: opts.caller?.roles ?? ["billing"],
      ...(opts.caller?.tenantId ? { tenantId: opts.caller.tenantId } : {}),
    })),
    ...opts.headers,
  };
  if (method === "POST" && opts.key !== null) h["idempotency-key"] = opts.key ?? newKey();
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !h["content-type"]) h["content-type"] = "application/json";
  // `via`: another instance of payments (another isolate) instead of the one under test.
  return (opts.via ?? SELF).fetch(BASE + path, { method, headers: h, body });
}

export async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return res.json<T>();
}

export const card = (number: string = CARDS.visa, extra: Record<string, unknown> = {}) => ({
  number,
  exp_month: 12,
  exp_year: YEAR,
  cvc: number.startsWith("37") ? "1234" : "123",
  ...extra,
});

export interface PaymentBody {
  id: string;
  status: string;
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  amount_refund_pending: number;
  currency: string;
  payment_method: string;
  decline_code: string | null;
}

export async function pay(amount: number, capture: "automatic" | "manual" = "automatic", extra: Record<string, unknown> = {}) {
  const res = await call("POST", "/v1/payments", { body: { amount, currency: "usd", card: card(), capture, ...extra } });
  if (res.status !== 201) throw new Error(`payment failed: ${res.status} ${await res.text()}`);
  return json<PaymentBody>(res);
}

/**
 * Row counts of every table (what "nothing written" is checked against), but the audit chain's
 * checkpoints: its sealer writes them on its own schedule, not for any request.
 */
export async function tableCounts(): Promise<Record<string, number>> {
  const { results } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' AND name NOT LIKE '%_checkpoints'",
  ).all<{ name: string }>();
  const out: Record<string, number> = {};
  for (const { name } of results) {
    const row = await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${name}`).first<{ n: number }>();
    out[name] = row?.n ?? 0;
  }
  return out;
}

/** Every value of every row of every table, as one string (for scanning raw storage). */
export async function dumpAllRows(): Promise<string> {
  const { results } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all<{ name: string }>();
  let out = "";
  for (const { name } of results) {
    if (name.startsWith("_cf_")) continue;
    const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
    out += `${name}:${JSON.stringify(rows.results)}\n`;
  }
  return out;
}

export const PAYMENTS_CHAIN = { table: "audit_events", checkpoints: "audit_events_checkpoints" };

/** Seals every pending record now, by the real sealer object's alarm. */
export function sealAll(): Promise<void> {
  return sealChain(env.DB, env.AUDIT_SEALER, PAYMENTS_CHAIN);
}

/** Edits records as an insider with raw database access would: guard triggers dropped meanwhile. */
export function asInsider<T>(fn: () => Promise<T>): Promise<T> {
  return withoutGuards(env.DB, PAYMENTS_CHAIN.table, fn);
}
