import { createRoute } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { assertScopes } from "../../../../shared/principal";
import { beginAudit } from "../audit";
import { checkCard } from "../domain/card";
import { asRouteResponse, runIdempotent } from "../executor";
import { errorResponses, IdempotencyHeaders, idParam, writeErrorResponses } from "../schemas/common";
import { CreatePaymentMethodBody, PaymentMethodSchema } from "../schemas/payment-method";
import { getPaymentMethod, paymentMethodView, tokenize } from "../store/vault";
import { router } from "./router";

const app = router();
const json = { "application/json": { schema: PaymentMethodSchema } };

const create = createRoute({
  method: "post",
  path: "/v1/payments/payment-methods",
  summary: "Tokenize a card into the vault",
  request: { headers: IdempotencyHeaders, body: { required: true, content: { "application/json": { schema: CreatePaymentMethodBody } } } },
  responses: { 201: { content: json, description: "Tokenized" }, ...writeErrorResponses },
});

app.openapi(create, async (c) => {
  beginAudit(c, { action: "payment_method.create", resourceType: "payment_method" });
  assertScopes(c.get("principal"), "payment:write");
  const body = c.req.valid("json");
  const res = await runIdempotent(c, body, async (info) => {
    // The CVC is checked for format and dropped here: it is never stored, not even encrypted (PCI-DSS 3.3.1.2).
    const checked = checkCard({ number: body.number, expMonth: body.exp_month, expYear: body.exp_year, cvc: body.cvc }, info.now);
    if (!checked.ok) throw new ApiError(422, checked.code, "The card was refused.");
    const sealed = await tokenize(info, { ...checked, expMonth: body.exp_month, expYear: body.exp_year }, body.holder_name);
    return {
      status: 201,
      body: sealed.view,
      subject: { action: "payment_method.create", resourceType: "payment_method", resourceId: sealed.view.id },
      outcome: "allowed",
      code: null,
      statements: [sealed.statement],
    };
  });
  return asRouteResponse<never>(res);
});

const read = createRoute({
  method: "get",
  path: "/v1/payments/payment-methods/{id}",
  summary: "Read a payment method (never the number)",
  request: { params: idParam("pm") },
  responses: { 200: { content: json, description: "The payment method" }, ...errorResponses },
});

app.openapi(read, async (c) => {
  const { id } = c.req.valid("param");
  beginAudit(c, { action: "payment_method.read", resourceType: "payment_method", resourceId: id });
  assertScopes(c.get("principal"), "payment:read");
  const row = await getPaymentMethod(c.env.DB, c.get("principal").tenantId, id);
  if (!row) throw new ApiError(404, "resource_missing", "No payment method has this id.");
  return c.json(paymentMethodView(row), 200);
});

export default app;
