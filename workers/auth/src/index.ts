import { instrument } from "@microlabs/otel-cf-workers";
import { traceConfig } from "../../../shared/telemetry";
import { buildApp } from "./app";

export { ClientRegistry } from "./client-registry";

export const app = buildApp();

export default instrument({ fetch: (req, env: Env, ctx) => app.fetch(req, env, ctx) } satisfies ExportedHandler<Env>, traceConfig("auth"));
