import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { tenantKeysTable } from "../../../../shared/keys/table";
import { auditChainColumns, checkpointsTable, pendingIndex } from "../../../../shared/audit/columns";
import { DEFAULT_TENANT_ID } from "../../../../shared/tenants";

/**
 * Storage of the phi worker (one D1 database). Nothing here holds a direct
 * identifier in plaintext (HIPAA 164.514(b)(2) list; 164.312(a)(2)(iv) encryption):
 * - resource_versions: every version of every resource, insert-only (21 CFR 11.10(e),
 *   HIPAA 164.312(c)(1) integrity). The resource body is sealed with AES-256-GCM as a
 *   whole (`v1.<kid>.<iv>.<ct>`), because identifiers also hide in extensions
 *   (mothers' maiden names, birth places) that field-level encryption would miss.
 * - search_index: keyed HMAC blind indexes of the current version's search values,
 *   plus the (non-identifying) Observation instant for range search. It is an index,
 *   not a record: it is replaced when a new version is written.
 * - phi_audit: the audit trail (HIPAA 164.312(b)), written with the data, hash-chained
 *   by its sealer; phi_audit_checkpoints: how far it is sealed (shared/audit).
 */
export const resourceVersions = sqliteTable(
  "resource_versions",
  {
    /** The tenant that owns the resource (issue 18): every query binds it. */
    tenantId: text("tenant_id").notNull().default(DEFAULT_TENANT_ID),
    resourceType: text("resource_type").notNull(),
    id: text("id").notNull(),
    versionId: integer("version_id").notNull(),
    lastUpdated: text("last_updated").notNull(),
    /** 1 for a tombstone (FHIR delete): `sealed` is then null. */
    deleted: integer("deleted").notNull(),
    sealed: text("sealed"),
    /** The server-assigned id of the Patient this resource concerns (a random UUID, not an identifier). */
    patientId: text("patient_id").notNull(),
  },
  // A unique index (not the primary key): a concurrent writer of the same version then
  // fails with SQLITE_CONSTRAINT_UNIQUE, which the audit append does not mistake for a
  // lost race on its own seq and retry.
  // `resource_versions_updated` serves searches in _lastUpdated order (keyset paging over the
  // versions as of a snapshot, store/search-query.ts) without sorting the whole type.
  // Every index leads with the tenant: each query is one tenant's range.
  // `resource_versions_patient` carries the type and the id after the patient, so a bulk export reads a patient's
  // resources in (patient, type, id) order and resumes inside one patient's history with a seek (export/chunk.ts).
  (t) => [
    uniqueIndex("resource_versions_version").on(t.tenantId, t.resourceType, t.id, t.versionId),
    index("resource_versions_patient").on(t.tenantId, t.patientId, t.resourceType, t.id),
    index("resource_versions_updated").on(t.tenantId, t.resourceType, t.lastUpdated, t.id),
  ],
);

export const searchIndex = sqliteTable(
  "search_index",
  {
    tenantId: text("tenant_id").notNull().default(DEFAULT_TENANT_ID),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull(),
    param: text("param").notNull(),
    /** HMAC-SHA256 hex of the normalized value; for `date`, the UTC instant. */
    token: text("token").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.resourceType, t.param, t.token, t.resourceId] }),
    index("search_index_resource").on(t.tenantId, t.resourceType, t.resourceId),
  ],
);

export const phiAudit = sqliteTable(
  "phi_audit",
  {
    ...auditChainColumns(),
    at: text("at").notNull(),
    /** The tenant the access happened in: a tenant's trail and $access-log show only its records. */
    tenantId: text("tenant_id").notNull().default(DEFAULT_TENANT_ID),
    actorSub: text("actor_sub").notNull(),
    actorClient: text("actor_client").notNull(),
    actorRoles: text("actor_roles").notNull(),
    tokenId: text("token_id").notNull(),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull(),
    /** Comma-separated Patient ids the access concerned (a search lists every patient it returned). */
    patientIds: text("patient_ids").notNull(),
    outcome: text("outcome").notNull(),
    reason: text("reason").notNull(),
    purposeOfUse: text("purpose_of_use").notNull(),
    clientIp: text("client_ip").notNull(),
    requestId: text("request_id").notNull(),
    traceId: text("trace_id").notNull(),
    /**
     * A record copied here by a tenant move (src/move/): its first home, `<shard>:<seq>`, so the copy keeps
     * its original id and a retried move copies it once. NULL for a record written on this shard.
     */
    origin: text("origin"),
  },
  // Every listing is one tenant's in seq order (phi_audit_tenant), filtered there by actor and time: no index
  // on `at` or `actor_sub` alone (migration 0010 dropped those, which no query used and every record paid for).
  (t) => [
    index("phi_audit_origin").on(t.tenantId, t.origin).where(sql`origin IS NOT NULL`),
    index("phi_audit_tenant").on(t.tenantId, t.seq),
    pendingIndex("phi_audit", t.seq),
  ],
);

export const phiAuditCheckpoints = checkpointsTable("phi_audit_checkpoints");

/**
 * Which sealed record names which patient: the accounting of disclosures by patient (HIPAA 164.528, `GET
 * /v1/phi/audit?patient=`) reads a patient's records through it instead of scanning the whole trail. Filled by a
 * trigger when the sealer seals a record (off the request path; migration 0009, which also backfilled the records
 * sealed before), so a record's links commit with its seal; pending records are found by scanning the pending
 * tail (src/store/audit-query.ts). Append-only like the trail (triggers).
 */
export const phiAuditPatients = sqliteTable(
  "phi_audit_patients",
  {
    tenantId: text("tenant_id").notNull(),
    patientId: text("patient_id").notNull(),
    seq: integer("seq").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.patientId, t.seq] })],
);

/** The tenants' wrapped data keys on this shard (shared/keys/table.ts): offboarding destroys them. */
export const tenantKeys = tenantKeysTable();
