import { healthRoutes, serviceCheck } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { serveOpenApi } from "../../../shared/openapi";
import { requirePrincipal } from "../../../shared/principal";
import { traced } from "../../../shared/telemetry";
import loadRoutes from "./routes/load";
import patientRoutes from "./routes/patients";

const app = createApp<Env>({ service: "synthetic-phi" });

app.route(
  "/",
  healthRoutes<Env>({
    name: "synthetic-phi",
    environment: (env) => env.ENVIRONMENT,
    checks: (env) => ({ phi: serviceCheck(env.PHI) }),
  }),
);
// Everything under /v1 comes only through the gateway, with its signed principal.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.route("/", patientRoutes);
app.route("/", loadRoutes);

// The worker's own OpenAPI 3.1 document, from its routes' zod schemas (the gateway merges them).
serveOpenApi(app, "synthetic-phi");

export { app };
export default traced({ fetch: (req, env: Env, ctx) => app.fetch(req, env, ctx) } satisfies ExportedHandler<Env>, "synthetic-phi");
