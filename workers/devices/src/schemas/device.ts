import { z } from "@hono/zod-openapi";

/** Printable text without control characters (identifiers end up in audit records and UIs). */
const printable = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[\x20-\x7E]+$/, "printable ASCII only");

export const DEVICE_ID = /^dev_[A-Za-z0-9_-]{8,64}$/;
export const DeviceIdParam = z.object({ id: z.string().regex(DEVICE_ID, "not a device id") });

export const DeviceStatusName = z.enum(["active", "decommissioned"]);

export const DeviceInput = z
  .object({
    /** FDA UDI (GS1, HIBCC or ICCBBA issued): device identifier plus production identifiers. */
    udi: printable(200),
    model: printable(200),
    manufacturer: printable(200),
    serial: printable(100),
    type: z.string().regex(/^[a-z][a-z0-9_]{0,49}$/, "lower-case snake_case, e.g. bedside_monitor"),
  })
  .strict()
  .openapi("DeviceInput");
export type DeviceInput = z.infer<typeof DeviceInput>;

export const Device = z
  .object({
    id: z.string(),
    udi: z.string(),
    model: z.string(),
    manufacturer: z.string(),
    serial: z.string(),
    type: z.string(),
    status: DeviceStatusName,
    client_id: z.string(),
    created_at: z.string(),
    created_by: z.string(),
    decommissioned_at: z.string().nullable(),
  })
  .openapi("Device");
export type Device = z.infer<typeof Device>;

export const RegisteredDevice = Device.extend({
  credentials: z.object({ client_id: z.string(), client_secret: z.string() }),
}).openapi("RegisteredDevice");

export const DeviceListQuery = z.object({
  status: DeviceStatusName.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().regex(DEVICE_ID).optional(),
});

export const DevicePage = z.object({ data: z.array(Device), next_cursor: z.string().nullable() }).openapi("DevicePage");

export const Reason = printable(500);
export const DecommissionInput = z.object({ reason: Reason }).strict().openapi("DecommissionInput");
