import { BUNDLE_MAX_ENTRIES } from "./bundle";
import { INCLUDES, RESOURCE_TYPES, SEARCH_PARAMS, type ResourceType } from "./search-params";

/**
 * The server's CapabilityStatement (R4 capabilitystatement.html, http.html#capabilities),
 * built from what is actually served: interactions from the app's route list, search
 * parameters and includes from the parser's own table, so the statement cannot promise
 * what the code does not do. Pure: routes, base URL and token URL come in as data.
 */
export interface ServedRoute {
  method: string;
  path: string;
}

/** (method, path after the type) -> FHIR interaction code. */
const INTERACTIONS: [string, string, string][] = [
  ["GET", "/:id", "read"],
  ["GET", "/:id/_history/:vid", "vread"],
  ["PUT", "/:id", "update"],
  ["DELETE", "/:id", "delete"],
  ["GET", "/:id/_history", "history-instance"],
  ["POST", "", "create"],
  ["GET", "", "search-type"],
];

/** Behaviour a route list cannot show: what the handlers check (see routes/patient.ts). */
const HANDLER_FEATURES: Record<ResourceType, { conditionalCreate: boolean; ifMatch: boolean }> = {
  Patient: { conditionalCreate: true, ifMatch: true },
  Observation: { conditionalCreate: false, ifMatch: false },
};

/** The date the statement's content last changed (R4 requires a date). */
const STATEMENT_DATE = "2026-12-01";

function served(routes: readonly ServedRoute[], type: ResourceType, method: string, rest: string): boolean {
  const path = `/v1/phi/${type}${rest}`;
  return routes.some((r) => r.method === method && r.path === path);
}

/** Bulk Data Access 2.0 operations (https://hl7.org/fhir/uv/bulkdata/), stated only when their kick-off route is served. */
const BULK = "http://hl7.org/fhir/uv/bulkdata";

function exportOperation(routes: readonly ServedRoute[], path: string, definition: string) {
  return routes.some((r) => r.method === "GET" && r.path === path) ? [{ name: "export", definition: `${BULK}/OperationDefinition/${definition}` }] : [];
}

function resource(routes: readonly ServedRoute[], type: ResourceType) {
  const operation = type === "Patient" ? exportOperation(routes, "/v1/phi/Patient/$export", "patient-export") : [];
  const interaction = INTERACTIONS.filter(([m, rest]) => served(routes, type, m, rest)).map(([, , code]) => ({ code }));
  const canUpdate = served(routes, type, "PUT", "/:id");
  const features = HANDLER_FEATURES[type];
  const { include, revinclude } = INCLUDES[type];
  return {
    type,
    profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
    interaction,
    versioning: canUpdate && features.ifMatch ? "versioned-update" : "versioned",
    readHistory: served(routes, type, "GET", "/:id/_history/:vid"),
    updateCreate: false,
    conditionalCreate: features.conditionalCreate,
    conditionalRead: "not-supported",
    conditionalUpdate: served(routes, type, "PUT", ""),
    conditionalDelete: "not-supported",
    ...(include.length > 0 ? { searchInclude: [...include] } : {}),
    ...(revinclude.length > 0 ? { searchRevInclude: [...revinclude] } : {}),
    ...(operation.length > 0 ? { operation } : {}),
    searchParam: SEARCH_PARAMS[type].map((p) => ({
      name: p.name,
      definition: `http://hl7.org/fhir/SearchParameter/${p.name.startsWith("_") ? `Resource${p.name.replace("_", "-")}` : `${type}-${p.name}`}`,
      type: p.type,
      documentation: p.documentation,
    })),
  };
}

/** Whole-system interactions (R4 CapabilityStatement.rest.interaction): Bundles posted to the base. */
function systemInteractions(routes: readonly ServedRoute[]) {
  if (!routes.some((r) => r.method === "POST" && r.path === "/v1/phi")) return [];
  const what = `at most ${BUNDLE_MAX_ENTRIES} entries: POST (ifNoneExist for Patient), PUT and DELETE of Patient (ifMatch), GET (read) of Patient and Observation; phi:read for GET entries, phi:write for the others`;
  return [
    { code: "transaction", documentation: `All entries or none, in one D1 batch with one audit record per entry; urn:uuid references resolved; ${what}.` },
    { code: "batch", documentation: `Each entry on its own, each audited; urn:uuid references between entries are not resolved; ${what}.` },
  ];
}

export function capabilityStatement(opts: { routes: readonly ServedRoute[]; base: string; tokenUrl: string; version: string }) {
  const systemExport = exportOperation(opts.routes, "/v1/phi/$export", "export");
  return {
    resourceType: "CapabilityStatement" as const,
    status: "active",
    date: STATEMENT_DATE,
    publisher: "health-platform",
    kind: "instance",
    software: { name: "health-platform phi", version: opts.version },
    implementation: { description: "FHIR R4 Patient and Observation records, encrypted at rest, every access audited", url: opts.base },
    fhirVersion: "4.0.1",
    format: ["json", "application/fhir+json", "application/json"],
    ...(systemExport.length > 0 ? { instantiates: [`${BULK}/CapabilityStatement/bulk-data`] } : {}),
    rest: [
      {
        mode: "server",
        security: {
          cors: false,
          service: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/restful-security-service", code: "SMART-on-FHIR" }] }],
          description:
            "OAuth 2 client credentials (SMART Backend Services); scopes phi:read / phi:write or SMART v2 system scopes (system/Patient.rs, system/*.cruds; v1 .read/.write); the list is in .well-known/smart-configuration",
          // SMART App Launch 1.0 conformance extension: where clients get tokens.
          extension: [
            {
              url: "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
              extension: [{ url: "token", valueUri: opts.tokenUrl }],
            },
          ],
        },
        resource: RESOURCE_TYPES.map((t) => resource(opts.routes, t)),
        ...(systemExport.length > 0 ? { operation: systemExport } : {}),
        interaction: systemInteractions(opts.routes),
        searchParam: [
          { name: "_count", type: "number", documentation: "Page size; above the server's maximum it is capped. 0 returns the total only." },
          { name: "_sort", type: "special", documentation: "_lastUpdated, -_lastUpdated or _id (default)." },
          { name: "_total", type: "special", documentation: "accurate counts every match; otherwise total is given when the first page holds them all." },
          { name: "_summary", type: "special", documentation: "count only." },
        ],
      },
    ],
  };
}
