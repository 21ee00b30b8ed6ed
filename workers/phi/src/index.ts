import type { MiddlewareHandler } from "hono";
import { d1Check, healthRoutes } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { serveOpenApi } from "../../../shared/openapi";
import { requirePlatformPrincipal, requirePrincipal } from "../../../shared/principal";
import { traced } from "../../../shared/telemetry";
import { auditEveryAccess } from "./audit/middleware";
import type { PhiEnv } from "./env";
import { exportRoutes } from "./export/routes";
import { moveRoutes } from "./move/route";
import { answerInFormat, fhirFormat, requestedFormat } from "./fhir/format";
import { renderPhiError } from "./fhir/outcome";
import { applyPreference } from "./fhir/prefer";
import { auditRoutes } from "./routes/audit";
import { bundleRoutes } from "./routes/bundle";
import { internalRoutes } from "./routes/internal";
import { metadataRoutes } from "./routes/metadata";
import { observationRoutes } from "./routes/observation";
import { patientRoutes } from "./routes/patient";
import { patientConditionalRoutes } from "./routes/patient-conditional";
import { patientHistoryRoutes } from "./routes/patient-history";
import { searchRoutes } from "./routes/search";
import { readFirst } from "./read-first";
import { phiSession, refuseInvalidBookmark } from "./store/scope";
import { shardDatabases } from "./store/shards";

export { PhiAuditSealer } from "./audit/sealer";
export { PhiExportJob } from "./export/job";

const app = createApp<Env>({ service: "phi", render: renderPhiError });

app.route(
  "/",
  healthRoutes<Env>({ name: "phi", environment: (env) => env.ENVIRONMENT, checks: (env) => Object.fromEntries(shardDatabases(env).map((db, i) => [i === 0 ? "db" : `db_shard_${i}`, d1Check(db)])) }),
);
// The CapabilityStatement is public (no PHI): answered before the principal check.
app.use("/v1/phi/metadata", fhirFormat());
app.route("/", metadataRoutes(() => app.routes));
// Internal operations no client route leads to (not in the gateway's table): offboarding's shred and tenant
// moves, only from auth, with a platform admin's principal it signs.
app.use("/internal/*", requirePlatformPrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
app.route("/", internalRoutes);
app.route("/", moveRoutes);
// Everything else under /v1 comes only through the gateway, with its signed principal,
// and every access through it leaves exactly one audit record.
app.use("/v1/*", requirePrincipal((env) => (env as Env).GATEWAY_HMAC_KEY));
// The tenant's shard, in a D1 session (read replicas, bookmarks), before anything reads or writes.
app.use("/v1/*", phiSession());
app.use("/v1/*", auditEveryAccess());
// Three per-request FHIR steps in one layer: a malformed bookmark is refused (after the audit middleware, so it is
// recorded), `_format` is checked and honoured, and `Prefer: return=` applied to a write's answer.
const fhirExchange: MiddlewareHandler<PhiEnv> = async (c, next) => {
  refuseInvalidBookmark(c);
  const format = requestedFormat(c);
  await next();
  await applyPreference(c);
  answerInFormat(c, format);
};
app.use("/v1/*", fhirExchange);
// Before the Patient routes: `Patient/$export` is an operation, not a Patient id.
app.route("/", exportRoutes);
app.route("/", searchRoutes);
app.route("/", patientRoutes);
app.route("/", patientConditionalRoutes);
app.route("/", patientHistoryRoutes);
app.route("/", observationRoutes);
app.route("/", auditRoutes);
app.route("/", bundleRoutes);

// The worker's own OpenAPI 3.1 document, from its routes' zod schemas (the gateway merges them).
serveOpenApi(app, "phi");

export { app };
// Most reads of one resource are answered without the app (src/read-first.ts); everything else by it.
const fetch = readFirst(app);
export default traced({ fetch: (req, env: Env, ctx) => fetch(req, env, ctx) } satisfies ExportedHandler<Env>, "phi");
