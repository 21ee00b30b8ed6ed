import { createRoute, z } from "@hono/zod-openapi";
import { assertScopes } from "../../../../shared/principal";
import { beginAudit } from "../audit";
import { asRouteResponse, runIdempotent, runStaged } from "../executor";
import { errorResponses, IdempotencyHeaders, idParam, problem, writeErrorResponses } from "../schemas/common";
import { CaptureBody, CreatePaymentBody, ListPaymentsQuery, PaymentListSchema, PaymentSchema, VoidBody } from "../schemas/payment";
import { CreateRefundBody, RefundSchema } from "../schemas/refund";
import { capturePayment, notFound, stagePayment, voidPayment } from "../services/payments";
import { createRefund } from "../services/refunds";
import { listPayments } from "../store/list";
import { getPayment, paymentView } from "../store/payments";
import { processorFor, router } from "./router";

const app = router();
const payment = { "application/json": { schema: PaymentSchema } };
const params = idParam("pi");
const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({ required, content: { "application/json": { schema } } });

const create = createRoute({
  method: "post",
  path: "/v1/payments",
  summary: "Create a payment (authorize, and capture unless capture is manual)",
  request: { headers: IdempotencyHeaders, body: jsonBody(CreatePaymentBody) },
  responses: {
    201: { content: payment, description: "Authorized (requires_capture) or captured (succeeded)" },
    402: problem("Declined: `code` is the decline code, `payment` the declined payment"),
    ...writeErrorResponses,
  },
});

app.openapi(create, async (c) => {
  beginAudit(c, { action: "payment.create", resourceType: "payment" });
  assertScopes(c.get("principal"), "payment:write");
  const body = c.req.valid("json");
  return asRouteResponse<never>(await runStaged(c, body, (info) => stagePayment(info, body, processorFor(c.env, c.get("principal").tenantId))));
});

const list = createRoute({
  method: "get",
  path: "/v1/payments",
  summary: "List payments, newest first (cursor paged; filter by status and creation time)",
  request: { query: ListPaymentsQuery },
  responses: { 200: { content: { "application/json": { schema: PaymentListSchema } }, description: "A page" }, ...errorResponses },
});

app.openapi(list, async (c) => {
  beginAudit(c, { action: "payment.list", resourceType: "payment" });
  assertScopes(c.get("principal"), "payment:read");
  const q = c.req.valid("query");
  const page = await listPayments(c.env.DB, c.get("principal").tenantId, {
    status: q.status,
    createdGte: q.created_gte,
    createdLt: q.created_lt,
    limit: q.limit,
    cursor: q.cursor,
  });
  return c.json({ object: "list" as const, data: page.rows.map(paymentView), next_cursor: page.next }, 200);
});

const read = createRoute({
  method: "get",
  path: "/v1/payments/{id}",
  summary: "Read a payment",
  request: { params },
  responses: { 200: { content: payment, description: "The payment" }, ...errorResponses },
});

app.openapi(read, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "payment.read", resourceType: "payment", resourceId: id });
  assertScopes(c.get("principal"), "payment:read");
  const row = await getPayment(c.env.DB, c.get("principal").tenantId, id);
  if (!row) throw notFound("payment");
  return c.json(paymentView(row), 200);
});

const capture = createRoute({
  method: "post",
  path: "/v1/payments/{id}/capture",
  summary: "Capture an authorized payment (all, or a smaller amount)",
  request: { params, headers: IdempotencyHeaders, body: jsonBody(CaptureBody, false) },
  responses: { 200: { content: payment, description: "Captured" }, ...writeErrorResponses },
});

app.openapi(capture, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "payment.capture", resourceType: "payment", resourceId: id });
  assertScopes(c.get("principal"), "payment:write");
  const body = c.req.valid("json");
  return asRouteResponse<never>(await runIdempotent(c, body, (info) => capturePayment(info, id, body.amount, processorFor(c.env, c.get("principal").tenantId))));
});

const cancel = createRoute({
  method: "post",
  path: "/v1/payments/{id}/void",
  summary: "Void an uncaptured payment (releases the authorization)",
  request: { params, headers: IdempotencyHeaders, body: jsonBody(VoidBody, false) },
  responses: { 200: { content: payment, description: "Canceled" }, ...writeErrorResponses },
});

app.openapi(cancel, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "payment.void", resourceType: "payment", resourceId: id });
  assertScopes(c.get("principal"), "payment:write");
  const body = c.req.valid("json");
  return asRouteResponse<never>(await runIdempotent(c, body, (info) => voidPayment(info, id, body.reason, processorFor(c.env, c.get("principal").tenantId))));
});

const refund = createRoute({
  method: "post",
  path: "/v1/payments/{id}/refunds",
  summary: "Refund part or all of a captured payment (above the threshold: pending_approval)",
  request: { params, headers: IdempotencyHeaders, body: jsonBody(CreateRefundBody) },
  responses: { 201: { content: { "application/json": { schema: RefundSchema } }, description: "Refund created" }, ...writeErrorResponses },
});

app.openapi(refund, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "refund.create", resourceType: "payment", resourceId: id });
  assertScopes(c.get("principal"), "payment:refund");
  const body = c.req.valid("json");
  return asRouteResponse<never>(await runIdempotent(c, body, (info) => createRefund(info, id, body, processorFor(c.env, c.get("principal").tenantId))));
});

export default app;
