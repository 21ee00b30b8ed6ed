import { z } from "@hono/zod-openapi";
import { codeSpec } from "../codes";

/** Largest sequence number a device may use (exact in a JS number and in SQLite INTEGER). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
export const MAX_BATCH = 500;

/**
 * The instants a device time (and a history range's `since`/`until`) may name: those whose UTC form has a
 * four-digit year (RFC 3339 5.6, `date-fullyear = 4DIGIT`). The store keeps and compares device times as
 * UTC text (`toISOString()`), which writes any other year with six digits and a sign (`+010000-...`,
 * `-000001-...`) that sort wrongly. The bound is what the text order needs, not a plausibility check: a
 * device whose clock reset to 1970-01-01 local time east of UTC names an instant before 1970, and its
 * vitals are still stored (beside the server's receive time).
 */
const EARLIEST_DEVICE_TIME = "0000-01-01T00:00:00.000Z";
const LATEST_DEVICE_TIME = "9999-12-31T23:59:59.999Z";
const earliest = Date.parse(EARLIEST_DEVICE_TIME);
const latest = Date.parse(LATEST_DEVICE_TIME);

/** An RFC 3339 date-time with offset naming an instant in the window above. */
const instant = (description: string) =>
  z.iso
    .datetime({ offset: true })
    .refine(
      (s) => {
        const t = Date.parse(s);
        return t >= earliest && t <= latest;
      },
      // Only once the format holds: a malformed time gets the one format issue.
      { message: `must be an instant from ${EARLIEST_DEVICE_TIME} to ${LATEST_DEVICE_TIME}`, when: (p) => p.issues.length === 0 },
    )
    .openapi({ description: `${description} RFC 3339 with offset, an instant from ${EARLIEST_DEVICE_TIME} to ${LATEST_DEVICE_TIME}; any other is refused.` });

/**
 * One reading as a device sends it. `device_time` is the device's clock (RFC 3339
 * with offset, within the window above); the server keeps its own receive time beside it.
 */
export const ReadingInput = z
  .object({
    seq: z.number().int().min(0).max(MAX_SEQ),
    code: z.string().min(1).max(20),
    value: z.number().finite(),
    unit: z.string().min(1).max(20),
    device_time: instant("The device's clock when it measured; stored in UTC."),
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
  since: instant("Readings whose device time is at or after this.").optional(),
  until: instant("Readings whose device time is before this.").optional(),
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
