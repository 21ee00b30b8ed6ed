import { z } from "@hono/zod-openapi";
import { VERIFY_LIMIT_MAX } from "../../../../shared/audit-chain";

export const AuditRecord = z
  .object({
    seq: z.number().int(),
    device_id: z.string(),
    time: z.string(),
    action: z.string(),
    actor_sub: z.string(),
    actor_client_id: z.string(),
    old_value: z.unknown(),
    new_value: z.unknown(),
    reason: z.string(),
    request_id: z.string(),
    prev_hash: z.string(),
    hash: z.string(),
  })
  .openapi("DeviceAuditRecord");

export const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  after: z.coerce.number().int().min(0).optional(),
  verify: z.enum(["true", "false"]).optional(),
  // `after`/`limit` page this device's records; the chain (every device's records) is verified in its own segments.
  verify_after: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .openapi({ description: "With verify=true: start the chain segment after this seq (default 0 = genesis; 404 past the head)" }),
  verify_limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(VERIFY_LIMIT_MAX)
    .optional()
    .openapi({ description: `With verify=true: most chain records this segment checks (default ${VERIFY_LIMIT_MAX})` }),
});

export const ChainVerify = z
  .object({
    ok: z.boolean(),
    records: z.number().int().openapi({ description: "Records verified intact in this segment" }),
    head: z.string().optional().openapi({ description: "Hash of the last record verified (of verify_after when none was); when ok" }),
    broken_at: z.number().int().optional().openapi({ description: "Seq of the first broken link; when not ok" }),
    reason: z.enum(["hash_mismatch", "prev_hash_mismatch", "gap"]).optional(),
    from: z.number().int().nullable().openapi({ description: "First seq this segment examined; null when none followed verify_after" }),
    to: z.number().int().nullable().openapi({ description: "Last seq this segment verified intact; null when none" }),
    next_after: z.number().int().nullable().openapi({ description: "Pass as verify_after for the next segment; null when complete or broken" }),
    complete: z.boolean().openapi({ description: "True only when this segment reached the current head" }),
  })
  .openapi("DeviceAuditChainVerify");

export const AuditPage = z
  .object({
    data: z.array(AuditRecord),
    next_cursor: z.number().int().nullable(),
    chain: ChainVerify.optional(),
  })
  .openapi("DeviceAuditPage");
