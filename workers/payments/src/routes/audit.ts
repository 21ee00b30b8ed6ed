import { createRoute } from "@hono/zod-openapi";
import { listAudit, tenantFilter } from "../../../../shared/audit/list";
import { sealerCheckpoint } from "../../../../shared/audit/sealer";
import { verifyChain } from "../../../../shared/audit/verify";
import { assertScopes } from "../../../../shared/principal";
import { AUDIT_TABLE, beginAudit, PAYMENTS_CHAIN } from "../audit";
import { errorResponses } from "../schemas/common";
import { AuditListSchema, AuditQuery, VerifyQuery, VerifySchema } from "../schemas/reports";
import { router } from "./router";

const app = router();

interface AuditRow {
  seq: number;
  prev_hash: string | null;
  hash: string | null;
  sealed_at: string | null;
  at: string;
  tenant_id: string;
  actor_sub: string;
  actor_client: string;
  actor_roles: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  outcome: string;
  code: string | null;
  amount: number | null;
  currency: string | null;
  request_id: string;
  trace_id: string | null;
  ip: string;
}

const list = createRoute({
  method: "get",
  path: "/v1/payments/audit",
  summary: "Read the audit trail in order (page with `after` = the last seq seen)",
  request: { query: AuditQuery },
  responses: { 200: { content: { "application/json": { schema: AuditListSchema } }, description: "Records" }, ...errorResponses },
});

app.openapi(list, async (c) => {
  // Reading the audit trail is itself audited (PCI-DSS 10.2.1.3).
  beginAudit(c, { action: "audit.read", resourceType: "audit" });
  assertScopes(c.get("principal"), "audit:read");
  const q = c.req.valid("query");
  const { rows, next } = await listAudit<AuditRow>(c.env.DB, AUDIT_TABLE, {
    after: q.after ?? 0,
    limit: q.limit,
    filters: [
      // The caller's tenant's records only: the chain is the service's, the trail a tenant reads is its own.
      tenantFilter(c.get("principal").tenantId),
      q.resource_id ? { kind: "eq", column: "resource_id", value: q.resource_id } : undefined,
      q.action ? { kind: "eq", column: "action", value: q.action } : undefined,
    ],
  });
  const data = rows.map((r) => ({ ...r, actor_roles: JSON.parse(r.actor_roles) as string[] }));
  return c.json({ object: "list" as const, data, next_after: next }, 200);
});

const verify = createRoute({
  method: "get",
  path: "/v1/payments/audit/verify",
  summary:
    "Recompute the sealed hash chain in segments (walk `after` = `next_after` until `complete`); report the first broken link, and how much is sealed and pending",
  request: { query: VerifyQuery },
  responses: { 200: { content: { "application/json": { schema: VerifySchema } }, description: "Verification result" }, ...errorResponses },
});

app.openapi(verify, async (c) => {
  beginAudit(c, { action: "audit.verify", resourceType: "audit" });
  assertScopes(c.get("principal"), "audit:read");
  const q = c.req.valid("query");
  // The sealer's own checkpoint copy (outside this database) is checked as well as the database's.
  const anchor = await sealerCheckpoint(c.env.AUDIT_SEALER, PAYMENTS_CHAIN.table);
  return c.json(await verifyChain(c.env.DB, PAYMENTS_CHAIN, { after: q.after, limit: q.limit, sealerCheckpoint: anchor }), 200);
});

export default app;
