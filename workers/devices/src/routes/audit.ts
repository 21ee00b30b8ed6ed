import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { listAudit, tenantFilter } from "../../../../shared/audit/list";
import { sealerCheckpoint } from "../../../../shared/audit/sealer";
import { verifyChain, VERIFY_LIMIT_MAX } from "../../../../shared/audit/verify";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { assertScopes } from "../../../../shared/principal";
import { DEVICE_CHAIN } from "../audit";
import { Registry } from "../registry";
import { AuditPage, AuditQuery } from "../schemas/audit";
import { DeviceIdParam } from "../schemas/device";
import { json, problem } from "../schemas/problem";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

interface AuditRow {
  seq: number;
  prev_hash: string | null;
  hash: string | null;
  sealed_at: string | null;
  device_id: string;
  tenant_id: string;
  time: string;
  action: string;
  actor_sub: string;
  actor_client_id: string;
  old_value: string | null;
  new_value: string | null;
  reason: string;
  request_id: string;
}

const list = createRoute({
  method: "get",
  path: "/v1/devices/{id}/audit",
  summary:
    "The device's Part 11 configuration trail; verify=true recomputes one segment of the hash chain (walk verify_after = chain.next_after until chain.complete)",
  request: { params: DeviceIdParam, query: AuditQuery },
  responses: {
    200: json(AuditPage, "Audit records, oldest first"),
    400: problem("Invalid query (verify_after and verify_limit need verify=true)"),
    404: problem("No such device, or verify_after past the chain's head"),
  },
});

app.openapi(list, async (c) => {
  assertScopes(c.get("principal"), "audit:read");
  const { id } = c.req.valid("param");
  const q = c.req.valid("query");
  const verify = q.verify === "true";
  if (!verify && (q.verify_after !== undefined || q.verify_limit !== undefined)) {
    throw new ApiError(400, "invalid_request", "verify_after and verify_limit apply only with verify=true.");
  }
  if (!(await new Registry(c.env.DB, c.get("principal").tenantId).get(id))) throw new ApiError(404, "device_not_found", "No device has this id.");
  const { rows, next } = await listAudit<AuditRow>(c.env.DB, DEVICE_CHAIN.table, {
    after: q.after ?? 0,
    limit: q.limit,
    // The caller's tenant's records only (the chain is the service's; a tenant reads its own trail).
    filters: [tenantFilter(c.get("principal").tenantId), { kind: "eq", column: "device_id", value: id }],
  });
  const page = rows.map((r) => ({
    ...r,
    old_value: r.old_value === null ? null : (JSON.parse(r.old_value) as unknown),
    new_value: r.new_value === null ? null : (JSON.parse(r.new_value) as unknown),
  }));
  // The sealer's own checkpoint copy (outside this database) is checked as well as the database's.
  const chain = verify
    ? await verifyChain(c.env.DB, DEVICE_CHAIN, {
        after: q.verify_after ?? 0,
        limit: q.verify_limit ?? VERIFY_LIMIT_MAX,
        sealerCheckpoint: await sealerCheckpoint(c.env.AUDIT_SEALER, DEVICE_CHAIN.table),
      })
    : undefined;
  return c.json({ data: page, next_cursor: next, ...(chain ? { chain } : {}) }, 200);
});

export default app;
