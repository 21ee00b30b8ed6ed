import { z } from "@hono/zod-openapi";
import { sealFields, verifyResultSchema } from "../../../../shared/audit/openapi";
import { VERIFY_LIMIT_MAX } from "../../../../shared/audit/verify";
import { Timestamp } from "./common";

export const BalanceSchema = z
  .object({
    object: z.literal("ledger_balance"),
    currencies: z.array(
      z.object({
        currency: z.string(),
        accounts: z.record(z.string(), z.number().int()),
        /** Sum of every line: zero when the books balance. */
        total: z.number().int(),
      }),
    ),
    balanced: z.boolean(),
  })
  .openapi("LedgerBalance");

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD");
export const DailyQuery = z.object({ from: day.optional(), to: day.optional() }).strict();

export const DailySchema = z
  .object({
    object: z.literal("ledger_daily"),
    from: z.string(),
    to: z.string(),
    data: z.array(
      z.object({ day: z.string(), currency: z.string(), kind: z.string(), entries: z.number().int(), debits: z.number().int(), credits: z.number().int() }),
    ),
  })
  .openapi("LedgerDaily");

export const AuditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    after: z.coerce.number().int().min(0).optional(),
    resource_id: z.string().regex(/^[a-z]{2}_[A-Za-z0-9_-]{8,40}$/).optional(),
    action: z.string().regex(/^[a-z_.]{1,40}$/).optional(),
  })
  .strict();

export const AuditRecordSchema = z
  .object({
    at: Timestamp,
    tenant_id: z.string().openapi({ description: "The tenant of the actor: a listing shows the caller's tenant's records only" }),
    actor_sub: z.string(),
    actor_client: z.string(),
    actor_roles: z.array(z.string()),
    action: z.string(),
    resource_type: z.string(),
    resource_id: z.string().nullable(),
    outcome: z.string(),
    code: z.string().nullable(),
    amount: z.number().int().nullable(),
    currency: z.string().nullable(),
    request_id: z.string(),
    trace_id: z.string().nullable(),
    ip: z.string(),
    ...sealFields,
  })
  .openapi("AuditRecord");

export const AuditListSchema = z
  .object({ object: z.literal("list"), data: z.array(AuditRecordSchema), next_after: z.number().int().nullable() })
  .openapi("AuditList");

export const VerifyQuery = z
  .object({
    after: z.coerce
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .default(0)
      .openapi({ description: "Start after this seq (0 = genesis; else the seq of an existing record, 404 past the head): the previous segment's `next_after`" }),
    limit: z.coerce
      .number()
      .int()
      .min(1)
      .max(VERIFY_LIMIT_MAX)
      .default(VERIFY_LIMIT_MAX)
      .openapi({ description: "Most records this segment checks" }),
  })
  .strict();

export const VerifySchema = verifyResultSchema().openapi("AuditVerify");
