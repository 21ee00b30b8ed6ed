import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { verifyChain } from "../../../../shared/audit-chain";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { assertScopes } from "../../../../shared/principal";
import { Registry } from "../registry";
import { AuditPage, AuditQuery } from "../schemas/audit";
import { DeviceIdParam } from "../schemas/device";
import { json, problem } from "../schemas/problem";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

interface AuditRow {
  seq: number;
  prev_hash: string;
  hash: string;
  device_id: string;
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
  summary: "The device's Part 11 configuration trail; verify=true recomputes the whole hash chain",
  request: { params: DeviceIdParam, query: AuditQuery },
  responses: { 200: json(AuditPage, "Audit records, oldest first"), 400: problem("Invalid query"), 404: problem("No such device") },
});

app.openapi(list, async (c) => {
  assertScopes(c.var.principal, "audit:read");
  const { id } = c.req.valid("param");
  const q = c.req.valid("query");
  if (!(await new Registry(c.env.DB).get(id))) throw new ApiError(404, "device_not_found", "No device has this id.");
  const { results } = await c.env.DB.prepare("SELECT * FROM device_audit WHERE device_id = ? AND seq > ? ORDER BY seq LIMIT ?")
    .bind(id, q.after ?? 0, q.limit + 1)
    .all<AuditRow>();
  const page = results.slice(0, q.limit).map((r) => ({
    ...r,
    old_value: r.old_value === null ? null : (JSON.parse(r.old_value) as unknown),
    new_value: r.new_value === null ? null : (JSON.parse(r.new_value) as unknown),
  }));
  const chain = q.verify === "true" ? await verifyChain(c.env.DB, "device_audit") : undefined;
  return c.json({ data: page, next_cursor: results.length > q.limit ? (page.at(-1)?.seq ?? null) : null, ...(chain ? { chain } : {}) }, 200);
});

export default app;
