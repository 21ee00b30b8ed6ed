import { z } from "@hono/zod-openapi";
import { sealFields, verifyResultSchema } from "../../../../shared/audit/openapi";
import { VERIFY_LIMIT_MAX } from "../../../../shared/audit/verify";

export const AuditRecord = z
  .object({
    device_id: z.string(),
    tenant_id: z.string().openapi({ description: "The actor's tenant: a listing shows the caller's tenant's records only" }),
    time: z.string(),
    action: z.string(),
    actor_sub: z.string(),
    actor_client_id: z.string(),
    old_value: z.unknown(),
    new_value: z.unknown(),
    reason: z.string(),
    request_id: z.string(),
    ...sealFields,
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

export const ChainVerify = verifyResultSchema("verify_after").openapi("DeviceAuditChainVerify");

export const AuditPage = z
  .object({
    data: z.array(AuditRecord),
    next_cursor: z.number().int().nullable(),
    chain: ChainVerify.optional(),
  })
  .openapi("DeviceAuditPage");
