import type { PhiEnv } from "../env";
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { decideIncludes, decideScope, enforce } from "../access";
import { phiSettings } from "../config";
import { RESOURCE_TYPES, RESULT_PARAMS, SEARCH_PARAMS, type ResourceType } from "../fhir/search-params";
import { pageFrom, runSearch } from "../service/search";
import { BundleOut, fhirErrors, fhirJson, phiRouter } from "./openapi";

/**
 * FHIR search for Patient and Observation (R4 search.html): GET with a query string,
 * or POST `_search` with a form body so identifiers need not sit in URLs.
 */
export const searchRoutes = phiRouter();

const MAX_FORM_BYTES = 16 * 1024;
const str = z.string().max(256).optional();
/** The documented query: the parser's own list of parameters (the parser, not this schema, validates them). */
function querySchema(type: ResourceType) {
  const names = [...SEARCH_PARAMS[type].map((p) => p.name), ...RESULT_PARAMS];
  return z.object({ ...Object.fromEntries(names.map((n) => [n, str])), _cursor: z.string().max(4096).optional() });
}

async function formParams(c: Context): Promise<[string, string][]> {
  const ct = (c.req.header("content-type") ?? "").toLowerCase().split(";")[0]?.trim();
  if (ct !== "application/x-www-form-urlencoded") {
    throw new ApiError(415, "unsupported_media_type", "Send application/x-www-form-urlencoded.");
  }
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > MAX_FORM_BYTES) throw new ApiError(413, "payload_too_large", "The search form is too large.");
  return [...new URLSearchParams(new TextDecoder().decode(bytes)).entries()];
}

function queryParams(c: Context): [string, string][] {
  return [...new URL(c.req.url).searchParams.entries()];
}

async function search(c: Context<PhiEnv>, type: ResourceType, params: [string, string][]) {
  const principal = c.get("principal");
  enforce(decideScope(principal.scopes, "search", type));
  const cfg = await phiSettings(c);
  const now = new Date();
  const page = await pageFrom(cfg, principal.sub, type, params, now);
  // Included resources are refused up front, never silently dropped: the client asked for them
  // (and a cursor carries the same request, so every page is checked again).
  enforce(decideIncludes(principal.scopes, page.query));
  return runSearch(c, cfg, page, now);
}

const ok = { 200: { description: "A searchset Bundle with next links", content: fhirJson(BundleOut) }, ...fhirErrors() };
const formOk = { ...ok, ...fhirErrors(413, 415) };

for (const type of RESOURCE_TYPES) {
  const query = querySchema(type);
  searchRoutes.openapi(createRoute({ method: "get", path: `/v1/phi/${type}`, request: { query }, responses: ok }), async (c) =>
    c.json(await search(c, type, queryParams(c)), 200),
  );
  searchRoutes.openapi(
    createRoute({
      method: "post",
      path: `/v1/phi/${type}/_search`,
      description: "Search parameters as an application/x-www-form-urlencoded body (same names as the GET form).",
      responses: formOk,
    }),
    async (c) => c.json(await search(c, type, await formParams(c)), 200),
  );
}
