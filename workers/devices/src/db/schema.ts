import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { auditChainColumns, checkpointsTable, pendingIndex } from "../../../../shared/audit/columns";
import { DEFAULT_TENANT_ID } from "../../../../shared/tenants";

/**
 * The tenant a row belongs to (issue 18): every query filters by the caller's
 * `principal.tenantId` and every insert stamps it. The default only moves the
 * rows written before tenants into the default tenant (SQLite adds a NOT NULL
 * column only with one); the code always writes the tenant explicitly.
 */
const tenantId = () => text("tenant_id").notNull().default(DEFAULT_TENANT_ID);

/**
 * The device registry. UDI (FDA 21 CFR 830 unique device identifier) and the
 * maker's serial each identify one physical device: both are unique within a
 * tenant (a device resold to another organization is registered there anew, and
 * a tenant never learns from a 409 what another tenant registered).
 */
export const devices = sqliteTable(
  "devices",
  {
    id: text("id").primaryKey(),
    tenantId: tenantId(),
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
    /** When offboarding its tenant erased the device's session data (readings, alarms, presence): see src/routes/internal.ts. */
    erasedAt: text("erased_at"),
  },
  (t) => [
    uniqueIndex("devices_udi").on(t.tenantId, t.udi),
    uniqueIndex("devices_serial").on(t.tenantId, t.manufacturer, t.serial),
    index("devices_tenant").on(t.tenantId, t.id),
    index("devices_status").on(t.tenantId, t.status, t.id),
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
    tenantId: tenantId(),
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
 * Every value is part of the hashed record (`tenant_id` as shared/audit/hash.ts's LATE_COLUMNS says).
 */
export const deviceAudit = sqliteTable(
  "device_audit",
  {
    ...auditChainColumns(),
    deviceId: text("device_id").notNull(),
    tenantId: tenantId(),
    time: text("time").notNull(),
    action: text("action").notNull(),
    actorSub: text("actor_sub").notNull(),
    actorClientId: text("actor_client_id").notNull(),
    oldValue: text("old_value"),
    newValue: text("new_value"),
    reason: text("reason").notNull(),
    requestId: text("request_id").notNull(),
  },
  (t) => [index("device_audit_device").on(t.tenantId, t.deviceId, t.seq), pendingIndex("device_audit", t.seq)],
);

/** How far the Part 11 trail is sealed (shared/audit). */
export const deviceAuditCheckpoints = checkpointsTable("device_audit_checkpoints");
