import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { serveOpenApi } from "../../../shared/openapi";
import { requirePlatformPrincipal, requirePrincipal } from "../../../shared/principal";
import { traced } from "../../../shared/telemetry";
import audit from "./routes/audit";
import { internalRoutes } from "./routes/internal";
import registry from "./routes/registry";
import sessions from "./routes/sessions";
import thresholds from "./routes/thresholds";

export { DeviceAuditSealer } from "./session/audit-sealer";
export { DeviceSession } from "./session/device-session";

const app = createApp<Env>({ service: "devices" });

app.route(
  "/",
  healthRoutes<Env>({
    name: "devices",
    environment: (env) => env.ENVIRONMENT,
    checks: (env) => ({
      db: d1Check(env.DB),
      sessions: async () => {
        await env.SESSIONS.get(env.SESSIONS.idFromName("readiness-probe")).ping();
      },
    }),
  }),
);
// Offboarding's erasure of a tenant's session data: only from auth, with a platform admin's principal it signs
// (no route of the gateway's table leads to /internal).
app.use("/internal/*", requirePlatformPrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.route("/", internalRoutes);
// Everything under /v1 comes only through the gateway, with its signed principal.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.route("/", registry);
app.route("/", sessions);
app.route("/", thresholds);
app.route("/", audit);

// The worker's own OpenAPI 3.1 document, from its routes' zod schemas (the gateway merges them).
serveOpenApi(app, "devices");

export { app };
export default traced({ fetch: (req, env: Env, ctx) => app.fetch(req, env, ctx) } satisfies ExportedHandler<Env>, "devices");
