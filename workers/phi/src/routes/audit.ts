import { scopeOf, shardOf } from "../store/scope";
import { sealerName, shardSealers } from "../audit/sealer";
import { createRoute, z } from "@hono/zod-openapi";
import { sealFields, verifyResultSchema } from "../../../../shared/audit/openapi";
import { sealerCheckpoint } from "../../../../shared/audit/sealer";
import { verifyChain, VERIFY_LIMIT_MAX } from "../../../../shared/audit/verify";
import { decideAuditScope, enforce } from "../access";
import { recordSuccess } from "../audit/middleware";
import { PHI_CHAIN } from "../audit/trail";
import { queryAudit } from "../store/audit-query";
import { phiRouter, problemErrors, ResourceId } from "./openapi";

/** The audit trail for auditors (`audit:read`): filtered reads and chain verification. */
export const auditRoutes = phiRouter();

const AuditQuery = z.object({
  patient: ResourceId.optional(),
  actor: z.string().min(1).max(200).optional(),
  since: z.iso.datetime().optional(),
  until: z.iso.datetime().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.coerce.number().int().min(0).default(0),
});

const AuditRecord = z.object({ ...sealFields, at: z.string() }).catchall(z.unknown());

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/audit",
    request: { query: AuditQuery },
    responses: {
      200: {
        description: "Audit records in chain order (seal columns null while pending)",
        content: { "application/json": { schema: z.object({ data: z.array(AuditRecord), next_cursor: z.number().nullable() }) } },
      },
      ...problemErrors(),
    },
  }),
  async (c) => {
    enforce(decideAuditScope(c.get("principal").scopes, "audit-search"));
    const q = c.req.valid("query");
    // Timestamps are stored as toISOString() (UTC, ms): normalize the filter the same way.
    const since = q.since ? new Date(q.since).toISOString() : undefined;
    const until = q.until ? new Date(q.until).toISOString() : undefined;
    const { rows, next } = await queryAudit(scopeOf(c), { ...q, since, until, after: q.cursor, limit: q.limit });
    await recordSuccess(c, { action: "audit-search", resourceType: "AuditTrail", resourceId: "", patientIds: [] }, new Date());
    return c.json({ data: rows, next_cursor: next }, 200);
  },
);

/** One segment of the chain: `after` = the previous segment's `next_after` (0 = genesis). */
const VerifyQuery = z.object({
  after: z.coerce
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .default(0)
    .openapi({ description: "Start after this seq: 0 (genesis) or the seq of an existing record (404 past the head)" }),
  limit: z.coerce.number().int().min(1).max(VERIFY_LIMIT_MAX).default(VERIFY_LIMIT_MAX).openapi({ description: "Most records this segment checks" }),
});

const VerifyOut = verifyResultSchema();

auditRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/audit/verify",
    request: { query: VerifyQuery },
    responses: {
      200: {
        description: "One segment of the sealed chain recomputed (walk `next_after` until `complete`), the first broken link if any, and how much is sealed and pending",
        content: { "application/json": { schema: VerifyOut } },
      },
      ...problemErrors(404),
    },
  }),
  async (c) => {
    enforce(decideAuditScope(c.get("principal").scopes, "audit-verify"));
    // Verified before this access is itself recorded, so the answer covers the chain as it was asked about.
    const q = c.req.valid("query");
    // The sealer's own checkpoint copy (outside this database) is checked as well as the database's.
    // The chain of the caller's shard, read at its primary (not a replica: verify wants the latest seal).
    const shard = c.get("principal").shard;
    const anchor = await sealerCheckpoint(shardSealers(c.env.AUDIT_SEALER, shard), sealerName(shard));
    const result = await verifyChain(shardOf(c), PHI_CHAIN, { after: q.after, limit: q.limit, sealerCheckpoint: anchor });
    await recordSuccess(c, { action: "audit-verify", resourceType: "AuditTrail", resourceId: "", patientIds: [] }, new Date());
    return c.json(result, 200);
  },
);
