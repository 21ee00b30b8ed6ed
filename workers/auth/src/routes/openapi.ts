import { Hono } from "hono";
import { logger } from "../../../../shared/logger";
import { VERSION } from "../../../../shared/version";
import { SERVICES } from "../gateway/route-table";
import { authDocument } from "../openapi/auth-doc";
import { mergeDocuments, type ServiceDoc } from "../openapi/merge";
import { authConfig } from "../config";
import { ApiError } from "../../../../shared/errors";

const app = new Hono<{ Bindings: Env }>();

const TAGS = { PHI: "phi", PAYMENTS: "payments", SYNTHETIC: "synthetic-phi", DEVICES: "devices" } as const;

let cached: { at: number; doc: Record<string, unknown> } | undefined;

/** The whole platform's OpenAPI 3.1 document, assembled from each worker's own (cached a minute). */
app.get("/openapi.json", async (c) => {
  if (!cached || Date.now() - cached.at > 60_000) {
    const services: ServiceDoc[] = [];
    for (const service of SERVICES) {
      const res = await c.env[service.binding].fetch("https://internal/openapi.json");
      if (!res.ok) {
        await res.body?.cancel();
        logger.error("openapi_fetch_failed", { service: service.binding, status: res.status });
        throw new ApiError(503, "openapi_unavailable", "The API description is not available right now.");
      }
      services.push({ service, tag: TAGS[service.binding], doc: await res.json() });
    }
    const base = authConfig(c.env).JWT_ISSUER.replace(/\/$/, "");
    cached = { at: Date.now(), doc: mergeDocuments(authDocument(), services, `${base}/oauth/token`, VERSION) };
  }
  return c.json(cached.doc, 200, { "cache-control": "public, max-age=60" });
});

export default app;
