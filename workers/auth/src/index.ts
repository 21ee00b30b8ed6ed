import { traced } from "../../../shared/telemetry";
import { buildApp, GATEWAY_MAX_BODY_BYTES } from "./app";
import { gatewayTable } from "./gateway/gateway";
import { proxyFirst } from "./gateway/proxy";
import { tokenFirst } from "./token-first";

export { ClientRegistry } from "./client-registry";

export const app = buildApp();

// The app's own routes that live under a service prefix (not table routes): the proxy path leaves them to it.
const tablePaths = new Set(gatewayTable().flatMap((r) => r.paths));
const ownPaths = app.routes.map((r) => r.path).filter((p) => p.startsWith("/v1/") && !tablePaths.has(p));
// Token requests, then the table routes' proxying, without the app; everything else is the app's.
const fetch = tokenFirst(proxyFirst(app, ownPaths, GATEWAY_MAX_BODY_BYTES), GATEWAY_MAX_BODY_BYTES);

export default traced({ fetch: (req, env: Env, ctx) => fetch(req, env, ctx) } satisfies ExportedHandler<Env>, "auth");
