import { createRoute } from "@hono/zod-openapi";
import { assertScopes } from "../../../../shared/principal";
import { beginAudit } from "../audit";
import { asRouteResponse, runIdempotent } from "../executor";
import { errorResponses, IdempotencyHeaders, idParam, writeErrorResponses } from "../schemas/common";
import { ApproveRefundBody, RefundSchema } from "../schemas/refund";
import { notFound } from "../services/payments";
import { approveRefund } from "../services/refunds";
import { getRefund, refundView } from "../store/refunds";
import { processorFor, router } from "./router";

const app = router();
const refund = { "application/json": { schema: RefundSchema } };
const params = idParam("re");

const read = createRoute({
  method: "get",
  path: "/v1/payments/refunds/{id}",
  summary: "Read a refund",
  request: { params },
  responses: { 200: { content: refund, description: "The refund" }, ...errorResponses },
});

app.openapi(read, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "refund.read", resourceType: "refund", resourceId: id });
  assertScopes(c.get("principal"), "payment:read");
  const row = await getRefund(c.env.DB, c.get("principal").tenantId, id);
  if (!row) throw notFound("refund");
  return c.json(refundView(row), 200);
});

const approve = createRoute({
  method: "post",
  path: "/v1/payments/refunds/{id}/approve",
  summary: "Approve a pending refund (a different principal than the requester, with payment:approve)",
  request: {
    params,
    headers: IdempotencyHeaders,
    body: { required: false, content: { "application/json": { schema: ApproveRefundBody } } },
  },
  responses: { 200: { content: refund, description: "Approved and paid" }, ...writeErrorResponses },
});

app.openapi(approve, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "refund.approve", resourceType: "refund", resourceId: id });
  assertScopes(c.get("principal"), "payment:approve");
  const body = c.req.valid("json");
  return asRouteResponse<never>(await runIdempotent(c, body, (info) => approveRefund(info, id, processorFor(c.env, c.get("principal").tenantId))));
});

export default app;
