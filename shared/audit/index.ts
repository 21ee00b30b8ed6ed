/** The audit trail of phi, payments and devices: append in the data's batch, seal off the request path, list, verify. */
export { auditInsert, commitWithRecord, sqlValue, type AuditValue, type SqlValue } from "./append";
export { auditChainColumns, checkpointsTable, pendingIndex } from "./columns";
export { GENESIS_HASH, canonicalJson, chainHash, type ChainColumns, type ChainValue } from "./hash";
export { listAudit, type AuditFilter, type ListPage } from "./list";
export { latestCheckpoint, sealPending, SEAL_BATCH_MAX, type ChainSpec, type Checkpoint, type SealResult } from "./seal";
export { AuditSealer, nudgeFromRequest, nudgeSealer, sealDelayMs, type SealerNamespace, type SealerSettings } from "./sealer";
export { verifyChain, VERIFY_LIMIT_MAX, type VerifyOptions, type VerifyResult } from "./verify";
