import { Hono } from "hono";
import { ApiError } from "../../../shared/errors";
import type { PageCspVariables } from "../../../shared/http";

/**
 * `GET /docs`: an interactive reference of `GET /openapi.json` (Swagger UI), with the
 * OAuth 2 client-credentials "Authorize" flow against `/oauth/token` and "Try it out".
 *
 * Swagger UI's files are self-hosted with Workers Static Assets (`[assets]` in
 * wrangler.toml, filled by scripts/docs-assets.mjs from swagger-ui-dist), never
 * bundled into the worker. `run_worker_first` sends every request here first, so
 * the assets are reachable only through `/docs/assets/*` below and get the same
 * request id, log line and security headers as any other response.
 *
 * The page is the only response with active content, so it alone gets a policy
 * beyond the API's `default-src 'none'`: scripts and styles from this origin only
 * (the initialiser is a same-origin file, so no inline script, nonce or hash is
 * needed), `data:` images for the icons inlined in Swagger UI's CSS, and fetches
 * to this origin only (the document, the token endpoint and "Try it out").
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>health-platform API reference</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="stylesheet" href="/docs/assets/index.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

/**
 * Swagger UI's start-up. No validator badge (it would call validator.swagger.io),
 * no token kept across reloads, and the OAuth scopes joined by spaces as RFC 6749 wants.
 */
export const DOCS_INIT_JS = `"use strict";
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  displayRequestDuration: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
});
window.ui.initOAuth({ scopeSeparator: " " });
`;

const app = new Hono<{ Bindings: Env; Variables: PageCspVariables }>();

app.get("/docs", (c) => {
  c.set("pageCsp", DOCS_CSP);
  return c.html(DOCS_HTML, 200, { "cache-control": "public, max-age=300" });
});

app.get("/docs/init.js", (c) =>
  c.body(DOCS_INIT_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=300" }),
);

// One plain file name, no sub-folders; a named route, so logs and metrics carry its template.
app.get("/docs/assets/:file", async (c) => {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(c.req.param("file"))) throw new ApiError(404, "not_found", "No such file.");
  const res = await c.env.ASSETS.fetch(c.req.raw);
  if (res.status === 404) {
    await res.body?.cancel();
    throw new ApiError(404, "not_found", "No such file.");
  }
  // A fetched response's headers are immutable; the app's middleware adds its own.
  return new Response(res.body, res);
});

export default app;
