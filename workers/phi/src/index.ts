import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { requirePrincipal } from "../../../shared/principal";
import { auditEveryAccess } from "./audit/middleware";
import { renderPhiError } from "./fhir/outcome";
import { auditRoutes } from "./routes/audit";
import { observationRoutes } from "./routes/observation";
import { patientRoutes } from "./routes/patient";
import { patientHistoryRoutes } from "./routes/patient-history";
import { searchRoutes } from "./routes/search";

const app = createApp<Env>({ service: "phi", render: renderPhiError });

app.route(
  "/",
  healthRoutes<Env>({ name: "phi", environment: (env) => env.ENVIRONMENT, checks: (env) => ({ db: d1Check(env.DB) }) }),
);
// Everything under /v1 comes only through the gateway, with its signed principal,
// and every access through it leaves exactly one audit record.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.use("/v1/*", auditEveryAccess());
app.route("/", searchRoutes);
app.route("/", patientRoutes);
app.route("/", patientHistoryRoutes);
app.route("/", observationRoutes);
app.route("/", auditRoutes);

export { app };
export default app;
