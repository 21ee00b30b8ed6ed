import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { serveOpenApi } from "../../../shared/openapi";
import { logger } from "../../../shared/logger";
import { requirePlatformPrincipal, requirePrincipal } from "../../../shared/principal";
import { traced } from "../../../shared/telemetry";
import { auditTrail } from "./audit";
import { pruneExpiredKeys } from "./idempotency";
import auditRoutes from "./routes/audit";
import { internalRoutes } from "./routes/internal";
import ledgerRoutes from "./routes/ledger";
import paymentMethodRoutes from "./routes/payment-methods";
import paymentRoutes from "./routes/payments";
import refundRoutes from "./routes/refunds";

export { PaymentsAuditSealer } from "./sealer";

const app = createApp<Env>({ service: "payments" });

app.route(
  "/",
  healthRoutes<Env>({ name: "payments", environment: (env) => env.ENVIRONMENT, checks: (env) => ({ db: d1Check(env.DB) }) }),
);
// Offboarding (auth only: the gateway never forwards /internal; a platform admin's signed principal).
app.use("/internal/*", requirePlatformPrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.route("/", internalRoutes);
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

// The worker's own OpenAPI 3.1 document, from its routes' zod schemas (the gateway merges them).
serveOpenApi(app, "payments");

export { app };
/**
 * The cron trigger (wrangler.toml `[triggers]`): idempotency keys past their 24 h are deleted, so the
 * table stays about one day of keys. The run's scheduled time is "now", so a test can run it as of later.
 */
async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  try {
    const { deleted, more } = await pruneExpiredKeys(env.DB, controller.scheduledTime);
    logger.info("idempotency_keys_pruned", { deleted, more, cron: controller.cron });
  } catch (err) {
    logger.error("idempotency_prune_failed", { error: err instanceof Error ? err.name : "unknown", cron: controller.cron });
    throw err;
  }
}

export default traced(
  { fetch: (req, env: Env, ctx) => app.fetch(req, env, ctx), scheduled: (controller, env: Env) => scheduled(controller, env) } satisfies ExportedHandler<Env>,
  "payments",
);
