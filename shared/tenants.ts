/**
 * Tenant identity shared by every worker. A tenant is an organization whose
 * data no other tenant can reach; every row of phi, payments and devices
 * carries one, and every query is scoped by the principal's `tenantId`.
 */

/** Where rows written before tenants existed live, and where clients created without a tenant go. */
export const DEFAULT_TENANT_ID = "ten_default";

/**
 * The tenant of a platform client (one that belongs to no organization, such
 * as the bootstrap admin). It owns no data, so a platform client reaching a
 * data service sees empty lists and 404s without any special case there.
 */
export const PLATFORM_TENANT_ID = "ten_platform";

/** `ten_` and a URL-safe suffix: the shape of every tenant id, generated or reserved. */
export const TENANT_ID_PATTERN = /^ten_[A-Za-z0-9_-]{1,64}$/;

/** Upper bound on PHI shards an environment may declare (bindings PHI_DB_0 ... PHI_DB_15). */
export const MAX_SHARDS = 16;
