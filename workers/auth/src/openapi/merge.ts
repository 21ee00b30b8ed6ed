import { SCOPES } from "../../../../shared/scopes";
import { fullPath, type Service } from "../gateway/route-table";

type Json = Record<string, unknown>;

export interface ServiceDoc {
  service: Service;
  tag: string;
  doc: Json;
}

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

const SCOPE_TEXT: Record<string, string> = {
  "phi:read": "Read and search patient records",
  "phi:write": "Create, update and delete patient records",
  "payment:read": "Read payments and payment methods",
  "payment:write": "Create payments and payment methods, capture, void",
  "payment:refund": "Request refunds",
  "payment:approve": "Approve refunds above the threshold (not one's own)",
  "synthetic:generate": "Generate synthetic patients",
  "device:read": "Read devices, readings, alarms; watch live",
  "device:write": "Register and decommission devices, set thresholds",
  "device:connect": "Connect as a device and send readings",
  "audit:read": "Read audit trails, ledgers and security events",
  admin: "Manage clients and keys",
};

/** Hono-style `:id` to OpenAPI `{id}`. */
export function toOpenApiPath(path: string): string {
  return path.replace(/:(\w+)/g, "{$1}");
}

/** Renames a service's component schemas to `<tag>.<Name>` so two services never collide. */
function prefixSchemas(doc: Json, tag: string): Json {
  const text = JSON.stringify(doc).replace(/"#\/components\/schemas\/([^"]+)"/g, `"#/components/schemas/${tag}.$1"`);
  const out = JSON.parse(text) as Json;
  const comps = (out.components ?? {}) as Json;
  const schemas = (comps.schemas ?? {}) as Json;
  comps.schemas = Object.fromEntries(Object.entries(schemas).map(([k, v]) => [`${tag}.${k}`, v]));
  out.components = comps;
  return out;
}

/**
 * One OpenAPI 3.1 document for the platform: the gateway's own paths, then
 * each service's paths (already under its prefix) with its tag and the
 * scopes the gateway's table requires, and the OAuth 2 client-credentials scheme.
 */
export function mergeDocuments(own: Json, services: ServiceDoc[], tokenUrl: string, version: string): Json {
  const paths: Record<string, Json> = { ...((own.paths ?? {}) as Record<string, Json>) };
  const schemas: Json = { ...(((own.components as Json | undefined)?.schemas ?? {}) as Json) };
  const tags = [{ name: "auth", description: "OAuth 2 token service, administration and discovery" }];
  for (const { service, tag, doc } of services) {
    tags.push({ name: tag, description: `Routes of the ${tag} worker, forwarded by the gateway` });
    const prefixed = prefixSchemas(doc, tag);
    Object.assign(schemas, (prefixed.components as Json).schemas as Json);
    for (const route of service.routes) {
      const p = toOpenApiPath(fullPath(service.prefix, route.path));
      const m = route.method.toLowerCase();
      const op = ((prefixed.paths as Record<string, Json> | undefined)?.[p]?.[m] ?? {
        summary: `${route.method} ${p}`,
        responses: { default: { description: "See the service's README" } },
      }) as Json;
      const responses = { ...((op.responses ?? {}) as Json) };
      // Discovery documents (public) need no token, so they have no token errors and an empty security list.
      if (!route.public) {
        responses["401"] ??= { description: "Missing, invalid, expired or revoked access token", content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
        responses["403"] ??= { description: "The token lacks a scope this route needs", content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
      }
      responses["502"] ??= { description: "bad_gateway: the service behind this route did not answer", content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
      if (!route.public) {
        // The gateway's own 503 (fail closed on a stale revocation view) joins whatever 503 the service documents.
        const own503 = "revocation_state_unavailable: the gateway could not refresh its revocation view within its hard bound (Retry-After)";
        const svc503 = responses["503"] as Json | undefined;
        responses["503"] = {
          description: svc503 ? `${String(svc503.description)}; or ${own503}` : own503,
          content: { ...((svc503?.content ?? {}) as Json), "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
        };
      }
      const security = route.public ? [] : [{ oauth2: [...route.scopes] }];
      paths[p] = { ...(paths[p] ?? {}), [m]: { ...op, tags: [tag], security, responses } };
    }
  }
  for (const item of Object.values(paths)) {
    for (const m of METHODS) {
      const op = item[m] as Json | undefined;
      if (op && !op.tags) op.tags = ["auth"];
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "health-platform API",
      version,
      description: "One OAuth 2 gateway in front of phi (FHIR R4), payments, synthetic-phi and devices.",
    },
    servers: [{ url: tokenUrl.replace(/\/oauth\/token$/, "") }],
    tags,
    paths,
    components: {
      schemas,
      securitySchemes: {
        oauth2: {
          type: "oauth2",
          description: "Client credentials (RFC 6749 4.4); HTTP Basic or form client authentication.",
          flows: { clientCredentials: { tokenUrl, scopes: Object.fromEntries(SCOPES.map((s) => [s, SCOPE_TEXT[s] ?? s])) } },
        },
      },
    },
  };
}
