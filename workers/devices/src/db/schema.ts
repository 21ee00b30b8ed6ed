import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { auditChainColumns, checkpointsTable, pendingIndex } from "../../../../shared/audit/columns";

/**
 * The device registry. UDI (FDA 21 CFR 830 unique device identifier) and the
 * maker's serial each identify one physical device: both are unique.
 */
export const devices = sqliteTable(
  "devices",
  {
    id: text("id").primaryKey(),
    udi: text("udi").notNull(),
    model: text("model").notNull(),
    manufacturer: text("manufacturer").notNull(),
    serial: text("serial").notNull(),
    type: text("type").notNull(),
    /** `active` | `decommissioned` (a decommissioned device never comes back). */
    status: text("status").notNull(),
    /** The auth client bound to this device (its id only; the secret is never stored here). */
    clientId: text("client_id").notNull(),
    createdAt: text("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    decommissionedAt: text("decommissioned_at"),
  },
  (t) => [
    uniqueIndex("devices_udi").on(t.udi),
    uniqueIndex("devices_serial").on(t.manufacturer, t.serial),
    index("devices_status").on(t.status, t.id),
  ],
);

/**
 * Alarm limits per device, one row per version: a change inserts version n+1 and
 * never overwrites n (21 CFR 11.10(e): previous values stay readable). The
 * primary key makes two concurrent changes from the same version collide, so
 * only one of them commits.
 */
export const thresholds = sqliteTable(
  "thresholds",
  {
    deviceId: text("device_id").notNull(),
    version: integer("version").notNull(),
    /** JSON object: code -> {low?, high?}. */
    limits: text("limits").notNull(),
    setAt: text("set_at").notNull(),
    setBy: text("set_by").notNull(),
    reason: text("reason").notNull(),
  },
  (t) => [primaryKey({ columns: [t.deviceId, t.version] })],
);

/**
 * Part 11 audit trail of configuration changes (21 CFR 11.10(e)): who, when
 * (server UTC), what, old value, new value, reason; hash-chained and append-only.
 * No column has a default: every value is part of the hashed record.
 */
export const deviceAudit = sqliteTable(
  "device_audit",
  {
    ...auditChainColumns(),
    deviceId: text("device_id").notNull(),
    time: text("time").notNull(),
    action: text("action").notNull(),
    actorSub: text("actor_sub").notNull(),
    actorClientId: text("actor_client_id").notNull(),
    oldValue: text("old_value"),
    newValue: text("new_value"),
    reason: text("reason").notNull(),
    requestId: text("request_id").notNull(),
  },
  (t) => [index("device_audit_device").on(t.deviceId, t.seq), pendingIndex("device_audit", t.seq)],
);

/** How far the Part 11 trail is sealed (shared/audit). */
export const deviceAuditCheckpoints = checkpointsTable("device_audit_checkpoints");
