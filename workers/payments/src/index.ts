import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { requirePrincipal } from "../../../shared/principal";
import { auditTrail } from "./audit";
import auditRoutes from "./routes/audit";
import ledgerRoutes from "./routes/ledger";
import paymentMethodRoutes from "./routes/payment-methods";
import paymentRoutes from "./routes/payments";
import refundRoutes from "./routes/refunds";

const app = createApp<Env>({ service: "payments" });

app.route(
  "/",
  healthRoutes<Env>({ name: "payments", environment: (env) => env.ENVIRONMENT, checks: (env) => ({ db: d1Check(env.DB) }) }),
);
// Everything under /v1 comes only through the gateway, with its signed principal.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
// Every action a handler begins leaves an audit record, whatever its outcome.
app.use("/v1/*", auditTrail());
// Static paths before `/v1/payments/:id`, so `/v1/payments/audit` never reads as a payment id.
app.route("/", paymentMethodRoutes);
app.route("/", refundRoutes);
app.route("/", ledgerRoutes);
app.route("/", auditRoutes);
app.route("/", paymentRoutes);

export { app };
export default app;
