import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { requirePrincipal } from "../../../shared/principal";

const app = createApp<Env>({ service: "payments" });

app.route(
  "/",
  healthRoutes<Env>({ name: "payments", environment: (env) => env.ENVIRONMENT, checks: (env) => ({ db: d1Check(env.DB) }) }),
);
// Everything under /v1 comes only through the gateway, with its signed principal.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));

export default app;
