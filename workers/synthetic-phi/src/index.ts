import { healthRoutes, serviceCheck } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { requirePrincipal } from "../../../shared/principal";
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

export { app };
export default app;
