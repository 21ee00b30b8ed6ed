import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { tenantKeysTable } from "../../../../shared/keys/table";
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
 * The card vault (PCI-DSS 3.5.1): the primary account number only as AES-256-GCM
 * ciphertext (`v1.<kid>.<iv>.<ct>`, the key id allows rotation), bound to the
 * row id as associated data. The CVC has no column at all (PCI-DSS 3.3.1.2).
 */
export const paymentMethods = sqliteTable(
  "payment_methods",
  {
    id: text("id").primaryKey(),
    tenantId: tenantId(),
    brand: text("brand").notNull(),
    last4: text("last4").notNull(),
    expMonth: integer("exp_month").notNull(),
    expYear: integer("exp_year").notNull(),
    /** Keyed HMAC-SHA256 of the number (PCI-DSS 3.5.1.1: hashes of a PAN must be keyed). */
    fingerprint: text("fingerprint").notNull(),
    numberEnc: text("number_enc").notNull(),
    holderNameEnc: text("holder_name_enc"),
    createdAt: text("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    createdByClient: text("created_by_client").notNull(),
  },
  (t) => [index("payment_methods_fingerprint").on(t.tenantId, t.fingerprint)],
);

/** One row per payment; `version` is bumped by every transition (optimistic concurrency). */
export const payments = sqliteTable(
  "payments",
  {
    id: text("id").primaryKey(),
    tenantId: tenantId(),
    status: text("status").notNull(),
    amount: integer("amount").notNull(),
    amountCaptured: integer("amount_captured").notNull(),
    amountRefunded: integer("amount_refunded").notNull(),
    amountRefundPending: integer("amount_refund_pending").notNull(),
    currency: text("currency").notNull(),
    captureMethod: text("capture_method").notNull(),
    paymentMethodId: text("payment_method_id").notNull(),
    declineCode: text("decline_code"),
    processorRef: text("processor_ref"),
    description: text("description"),
    /** JSON object of short strings (free text is refused if it holds a card number). */
    metadata: text("metadata").notNull(),
    version: integer("version").notNull(),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    createdBy: text("created_by").notNull(),
    createdByClient: text("created_by_client").notNull(),
  },
  (t) => [index("payments_created").on(t.tenantId, t.createdAt, t.id), index("payments_status_created").on(t.tenantId, t.status, t.createdAt)],
);

/**
 * Every transition of a payment, keyed by (payment, version): two concurrent
 * transitions from the same version collide here and the losing batch rolls back.
 */
export const paymentTransitions = sqliteTable(
  "payment_transitions",
  {
    paymentId: text("payment_id").notNull(),
    tenantId: tenantId(),
    version: integer("version").notNull(),
    fromStatus: text("from_status"),
    toStatus: text("to_status").notNull(),
    event: text("event").notNull(),
    actor: text("actor").notNull(),
    at: text("at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.paymentId, t.version] })],
);

export const refunds = sqliteTable(
  "refunds",
  {
    id: text("id").primaryKey(),
    tenantId: tenantId(),
    paymentId: text("payment_id").notNull(),
    amount: integer("amount").notNull(),
    currency: text("currency").notNull(),
    reason: text("reason").notNull(),
    status: text("status").notNull(),
    requestedBy: text("requested_by").notNull(),
    requestedByClient: text("requested_by_client").notNull(),
    approvedBy: text("approved_by"),
    createdAt: text("created_at").notNull(),
    approvedAt: text("approved_at"),
  },
  (t) => [index("refunds_payment").on(t.tenantId, t.paymentId)],
);

/** Double-entry ledger: the lines of one entry sum to zero (debits positive, credits negative). */
export const ledgerLines = sqliteTable(
  "ledger_lines",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    tenantId: tenantId(),
    entryId: text("entry_id").notNull(),
    paymentId: text("payment_id").notNull(),
    refundId: text("refund_id"),
    kind: text("kind").notNull(),
    account: text("account").notNull(),
    currency: text("currency").notNull(),
    amount: integer("amount").notNull(),
    actor: text("actor").notNull(),
    reason: text("reason"),
    requestId: text("request_id").notNull(),
    traceId: text("trace_id"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [
    index("ledger_lines_payment").on(t.tenantId, t.paymentId),
    index("ledger_lines_created").on(t.tenantId, t.createdAt),
    index("ledger_lines_account").on(t.tenantId, t.currency, t.account),
  ],
);

/**
 * Idempotency keys, scoped to the tenant and the calling client. The first request claims the
 * key with one INSERT (atomic); its answer is stored in the same batch as the
 * work it did. `request_hash` is keyed (bodies may hold card numbers).
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    tenantId: tenantId(),
    clientId: text("client_id").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    state: text("state").notNull(),
    responseStatus: integer("response_status"),
    responseBody: text("response_body"),
    createdAt: integer("created_at").notNull(),
    /** An in-flight claim older than this is abandoned (the worker died) and may be taken over. */
    lockedUntil: integer("locked_until").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.clientId, t.key] }), index("idempotency_keys_expires").on(t.expiresAt)],
);

/** Append-only audit trail (SOX 404, PCI-DSS 10.2), hash-chained by its sealer. Every data column is hashed. */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    ...auditChainColumns(),
    at: text("at").notNull(),
    /** Hashed like every data column, except the default tenant's (shared/audit/hash.ts, LATE_COLUMNS). */
    tenantId: tenantId(),
    actorSub: text("actor_sub").notNull(),
    actorClient: text("actor_client").notNull(),
    actorRoles: text("actor_roles").notNull(),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id"),
    outcome: text("outcome").notNull(),
    code: text("code"),
    amount: integer("amount"),
    currency: text("currency"),
    requestId: text("request_id").notNull(),
    traceId: text("trace_id"),
    ip: text("ip").notNull(),
  },
  (t) => [
    index("audit_events_tenant").on(t.tenantId, t.seq),
    index("audit_events_resource").on(t.tenantId, t.resourceId, t.seq),
    pendingIndex("audit_events", t.seq),
  ],
);

/** How far the audit chain is sealed (shared/audit). */
export const auditCheckpoints = checkpointsTable("audit_events_checkpoints");

/**
 * The simulated processor's own book of operations (it stands in for the
 * acquirer's records): lets tests count charges. A real adapter has no table here.
 */
export const processorOperations = sqliteTable("processor_operations", {
  id: text("id").primaryKey(),
  tenantId: tenantId(),
  operation: text("operation").notNull(),
  reference: text("reference").notNull(),
  amount: integer("amount").notNull(),
  currency: text("currency").notNull(),
  outcome: text("outcome").notNull(),
  createdAt: text("created_at").notNull(),
});

/** The tenants' wrapped card-vault keys (shared/keys/table.ts): offboarding destroys them. */
export const tenantKeys = tenantKeysTable();
