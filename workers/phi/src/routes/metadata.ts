import { createRoute, z } from "@hono/zod-openapi";
import { VERSION } from "../../../../shared/version";
import { capabilityStatement, type ServedRoute } from "../fhir/capability";
import { FHIR_JSON } from "../fhir/outcome";
import { publicBase, tokenEndpoint } from "../service/base-url";
import { fhirJson, phiRouter } from "./openapi";

const CapabilityOut = z.object({ resourceType: z.literal("CapabilityStatement"), fhirVersion: z.string() }).catchall(z.unknown()).openapi("CapabilityStatement");

/**
 * `GET /v1/phi/metadata`: the CapabilityStatement. Public, like the OAuth metadata: it
 * holds no PHI, and clients read it before they have a token. Mounted before the
 * principal check, and not audited (it is not an access to a record).
 */
export function metadataRoutes(routes: () => readonly ServedRoute[]) {
  const app = phiRouter();
  app.openapi(
    createRoute({
      method: "get",
      path: "/v1/phi/metadata",
      description: "The CapabilityStatement (public: no token needed).",
      responses: { 200: { description: "CapabilityStatement", content: fhirJson(CapabilityOut) } },
    }),
    (c) => {
      const body = capabilityStatement({ routes: routes(), base: publicBase(c), tokenUrl: tokenEndpoint(c), version: VERSION });
      return c.json(body, 200, { "content-type": FHIR_JSON, "cache-control": "public, max-age=300" });
    },
  );
  return app;
}
