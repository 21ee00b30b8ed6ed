import { z } from "@hono/zod-openapi";
import { codeSpec } from "../codes";

/** Largest sequence number a device may use (exact in a JS number and in SQLite INTEGER). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
export const MAX_BATCH = 500;

/**
 * One reading as a device sends it. `device_time` is the device's clock (RFC 3339
 * with offset); the server keeps its own receive time beside it.
 */
export const ReadingInput = z
  .object({
    seq: z.number().int().min(0).max(MAX_SEQ),
    code: z.string().min(1).max(20),
    value: z.number().finite(),
    unit: z.string().min(1).max(20),
    device_time: z.iso.datetime({ offset: true }),
  })
  .strict()
  .superRefine((r, ctx) => {
    const spec = codeSpec(r.code);
    if (!spec) {
      ctx.addIssue({ code: "custom", path: ["code"], message: "unsupported code" });
      return;
    }
    if (r.unit !== spec.unit) ctx.addIssue({ code: "custom", path: ["unit"], message: `the unit of this code is ${spec.unit}` });
    if (r.value < spec.min || r.value > spec.max) {
      ctx.addIssue({ code: "custom", path: ["value"], message: "outside the possible range for this code" });
    }
  })
  .openapi("ReadingInput");
export type ReadingInput = z.infer<typeof ReadingInput>;

export const ReadingBatch = z
  .object({ readings: z.array(ReadingInput).min(1).max(MAX_BATCH) })
  .strict()
  .openapi("ReadingBatch");

export const Reading = z
  .object({
    seq: z.number().int(),
    code: z.string(),
    value: z.number(),
    unit: z.string(),
    device_time: z.string(),
    received_at: z.string(),
  })
  .openapi("Reading");
export type Reading = z.infer<typeof Reading>;

export const IngestResult = z
  .object({
    acks: z.array(z.number().int()),
    stored: z.number().int(),
    duplicates: z.number().int(),
    alarms: z.number().int(),
  })
  .openapi("IngestResult");
export type IngestResult = z.infer<typeof IngestResult>;

export const ReadingsQuery = z.object({
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  code: z.string().max(20).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  /** Cursor: the last `seq` of the previous page. */
  after: z.coerce.number().int().min(-1).max(MAX_SEQ).optional(),
});
export type ReadingsQuery = z.infer<typeof ReadingsQuery>;

export const ReadingPage = z.object({ data: z.array(Reading), next_cursor: z.number().int().nullable() }).openapi("ReadingPage");

export const Alarm = z
  .object({
    id: z.number().int(),
    seq: z.number().int(),
    code: z.string(),
    value: z.number(),
    unit: z.string(),
    kind: z.enum(["low", "high"]),
    limit: z.number(),
    thresholds_version: z.number().int(),
    device_time: z.string(),
    raised_at: z.string(),
  })
  .openapi("Alarm");
export type Alarm = z.infer<typeof Alarm>;

export const AlarmsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.coerce.number().int().min(0).optional(),
});
export type AlarmsQuery = z.infer<typeof AlarmsQuery>;

export const AlarmPage = z.object({ data: z.array(Alarm), next_cursor: z.number().int().nullable() }).openapi("AlarmPage");

export const Status = z
  .object({
    device_id: z.string(),
    online: z.boolean(),
    last_seen: z.string().nullable(),
    connected: z.boolean(),
    thresholds_version: z.number().int(),
    last_readings: z.array(Reading),
    /** The latest presence changes, newest first. */
    recent_presence: z.array(z.object({ online: z.boolean(), reason: z.string(), at: z.string() })),
  })
  .openapi("DeviceStatus");
export type Status = z.infer<typeof Status>;
