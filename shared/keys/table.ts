import { sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Per-tenant data keys (envelope encryption, shared/keys/tenant-keys.ts): one row per tenant in each
 * database that holds the tenant's sealed data. `wrapped` is the tenant's AES-256 data key encrypted
 * under the platform keyring (`v1.<platform kid>.<iv>.<ct>`, bound to service, tenant and key id);
 * offboarding overwrites it and sets it NULL for good (crypto-shredding). The row stays as a tombstone:
 * its `destroyed_*` columns say when, by whom and why, and no new key can ever be made for the tenant.
 */
export function tenantKeysTable() {
  return sqliteTable("tenant_keys", {
    tenantId: text("tenant_id").primaryKey(),
    /** The data key's id, as it appears in every ciphertext made under it. */
    kid: text("kid").notNull(),
    wrapped: text("wrapped"),
    createdAt: text("created_at").notNull(),
    destroyedAt: text("destroyed_at"),
    destroyedBy: text("destroyed_by"),
    destroyedReason: text("destroyed_reason"),
  });
}
