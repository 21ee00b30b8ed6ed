import { traced } from "../../../shared/telemetry";
import { buildApp } from "./app";

export { ClientRegistry } from "./client-registry";

export const app = buildApp();

export default traced({ fetch: (req, env: Env, ctx) => app.fetch(req, env, ctx) } satisfies ExportedHandler<Env>, "auth");
