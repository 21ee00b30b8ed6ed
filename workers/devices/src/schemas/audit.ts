import { z } from "@hono/zod-openapi";

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
});

export const AuditPage = z
  .object({
    data: z.array(AuditRecord),
    next_cursor: z.number().int().nullable(),
    chain: z
      .object({ ok: z.boolean(), records: z.number().int(), head: z.string().optional(), broken_at: z.number().int().optional() })
      .optional(),
  })
  .openapi("DeviceAuditPage");
