import { scopeOf } from "../store/scope";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { decideResource, decideVersionMatch, enforce } from "../access";
import { phiSettings } from "../config";
import { patientValues } from "../fhir/index-tokens";
import { PatientSchema } from "../fhir/patient";
import { conditionalCriteria, conditionalMatches } from "../service/conditional";
import { resourceHeaders } from "../service/present";
import { createGuarded, writeVersion } from "../service/write";
import { noLiveMatch } from "../store/search-query";
import { FHIR_REQUEST, fhirErrors, fhirJson, phiRouter, requireFhirJson, ResourceOut } from "./openapi";

/**
 * FHIR conditional update (R4 http.html#cond-update): `PUT Patient?identifier=system|value`.
 * No match: create (the server assigns the id); one match: update it (If-Match honoured);
 * several: 412. Same parsing and blind indexes as search: nothing is decrypted to match.
 */
export const patientConditionalRoutes = phiRouter();

patientConditionalRoutes.openapi(
  createRoute({
    method: "put",
    path: "/v1/phi/Patient",
    description: "Conditional update: the query string holds Patient search parameters (e.g. `identifier=system|value`).",
    middleware: [requireFhirJson()],
    request: {
      body: { content: { [FHIR_REQUEST]: { schema: PatientSchema } }, required: true },
      headers: z.object({ "if-match": z.string().max(64).optional() }),
    },
    responses: {
      200: { description: "Updated the one match: a new version", content: fhirJson(ResourceOut) },
      201: { description: "Nothing matched: created", content: fhirJson(ResourceOut) },
      ...fhirErrors(409, 412, 413, 415),
    },
  }),
  async (c) => {
    // It searches, then updates the match or creates: all three must be allowed before anything is
    // looked up, so the answer (200 or 201) tells a client nothing it could not already find out.
    enforce(decideResource(c.get("principal").scopes, "Patient", "s", "u", "c"));
    const input = c.req.valid("json");
    const url = new URL(c.req.url);
    url.searchParams.delete("_format");
    const cfg = await phiSettings(c);
    const scope = scopeOf(c);
    const conds = await conditionalCriteria(cfg, url.searchParams.toString());
    const matches = await conditionalMatches(scope, cfg, url.searchParams.toString(), conds);
    if (matches.length > 1) throw new ApiError(412, "multiple_matches", "The criteria match more than one Patient.");
    const head = matches[0];
    const now = new Date();
    if (!head) {
      // Ids are server-assigned: a client id for a new resource would be update-as-create.
      if (input.id !== undefined) throw new ApiError(400, "id_not_allowed", "Nothing matched: leave out id, the server assigns it.");
      const id = crypto.randomUUID();
      // Created only while still nothing matches, inside the write's own transaction (as a conditional create).
      const version = { type: "Patient" as const, id, versionId: 1, patientId: id, body: input, values: patientValues(input, id) };
      const { row, resource, written } = await createGuarded(c, cfg, version, noLiveMatch(scope.tenant, "Patient", conds), now);
      if (!written) throw new ApiError(409, "conditional_update_conflict", "A Patient matching the criteria was created at the same time; send the update again.");
      return c.json(resource ?? { resourceType: "Patient", id }, 201, resourceHeaders(row, true));
    }
    if (input.id !== undefined && input.id !== head.id) throw new ApiError(400, "id_mismatch", "The resource id is not the id of the Patient the criteria match.");
    enforce(decideVersionMatch(c.req.valid("header")["if-match"], head));
    const body = { ...input, id: head.id };
    const { row, resource } = await writeVersion(
      c,
      cfg,
      "update",
      { type: "Patient", id: head.id, versionId: head.version_id + 1, patientId: head.id, body, values: patientValues(body, head.id) },
      now,
    );
    return c.json(resource ?? { resourceType: "Patient", id: head.id }, 200, resourceHeaders(row, true));
  },
);
