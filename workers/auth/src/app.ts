import { d1Check, healthRoutes, serviceCheck } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { activeRequests, gatewayRequestDone } from "./metrics";
import docsRoutes from "./docs";
import { gatewayRoutes } from "./gateway/gateway";
import adminRoutes from "./routes/admin";
import oauthRoutes from "./routes/oauth";
import openapiRoutes from "./routes/openapi";
import tenantMoveRoutes from "./routes/tenant-move";
import tenantRoutes from "./routes/tenants";
import wellKnownRoutes from "./routes/well-known";

/** The largest request body the gateway accepts (the app's body limit; the proxy path forwards only declared lengths within it). */
export const GATEWAY_MAX_BODY_BYTES = 1024 * 1024;

export function buildApp() {
  const app = createApp<Env>({
    service: "auth",
    maxBodyBytes: GATEWAY_MAX_BODY_BYTES,
    accessLog: "info",
    hooks: { start: () => activeRequests.add(1), done: (r) => gatewayRequestDone(r.seconds, r.route, r.method, r.status) },
  });

  app.route(
    "/",
    healthRoutes<Env>({
      name: "auth",
      environment: (env) => env.ENVIRONMENT,
      checks: (env) => ({
        db: d1Check(env.DB),
        phi: serviceCheck(env.PHI),
        payments: serviceCheck(env.PAYMENTS),
        synthetic: serviceCheck(env.SYNTHETIC),
        devices: serviceCheck(env.DEVICES),
      }),
    }),
  );
  app.route("/", wellKnownRoutes);
  app.route("/", oauthRoutes);
  app.route("/", adminRoutes);
  app.route("/", tenantRoutes);
  app.route("/", tenantMoveRoutes);
  app.route("/", openapiRoutes);
  app.route("/", docsRoutes);
  app.route("/", gatewayRoutes());
  return app;
}
