import type { Context } from "hono";
import type { AppVariables } from "../../../shared/http";
import type { Principal } from "../../../shared/principal";
import { paymentsConfig, type PaymentsConfig } from "./config";

export interface AuditSubject {
  action: string;
  resourceType: "payment" | "payment_method" | "refund" | "ledger" | "audit" | "tenant";
  resourceId?: string | null | undefined;
  amount?: number | null | undefined;
  currency?: string | null | undefined;
}

/** What the handler is doing, so the audit middleware can record it whatever the outcome. */
export interface AuditState extends AuditSubject {
  written: boolean;
}

export type PaymentsVariables = AppVariables & { audit?: AuditState };
export type PaymentsEnv = { Bindings: Env; Variables: PaymentsVariables };
export type Ctx = Context<PaymentsEnv>;

/** Everything a service needs about the request, as plain data. */
export interface RequestInfo {
  db: D1Database;
  config: PaymentsConfig;
  principal: Principal;
  requestId: string;
  traceId: string | null;
  now: Date;
}

/** W3C Trace Context `traceparent`: version-traceid-parentid-flags. */
export function traceIdOf(header: string | undefined): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(header ?? "");
  return m?.[1] && !/^0+$/.test(m[1]) ? m[1] : null;
}

export function requestInfo(c: Ctx): RequestInfo {
  return {
    db: c.env.DB,
    config: paymentsConfig(c.env),
    principal: c.get("principal"),
    requestId: c.get("requestId"),
    traceId: traceIdOf(c.req.header("traceparent")),
    now: new Date(),
  };
}
