import { scopeOf } from "../store/scope";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { decideReadable, decideResource, decideScope, decideVersionMatch, enforce } from "../access";
import { recordSuccess } from "../audit/middleware";
import { phiSettings } from "../config";
import { patientValues } from "../fhir/index-tokens";
import { PatientSchema } from "../fhir/patient";
import { presentVersion, resourceHeaders } from "../service/present";
import { readResource } from "../service/read";
import { createGuarded, writeVersion } from "../service/write";
import { readHead } from "../store/resources";
import { noLiveMatch } from "../store/search-query";
import { conditionalCriteria, conditionalMatches } from "../service/conditional";
import { FHIR_REQUEST, fhirErrors, fhirJson, phiRouter, requireFhirJson, ResourceId, ResourceOut } from "./openapi";

/** FHIR R4 Patient: create, read, update (new version), delete (tombstone version). */
export const patientRoutes = phiRouter();

const body = { content: { [FHIR_REQUEST]: { schema: PatientSchema } }, required: true };
const idParam = z.object({ id: ResourceId });
const ifMatch = z.object({ "if-match": z.string().max(64).optional() });
const ifNoneExist = z.object({
  "if-none-exist": z
    .string()
    .max(512)
    .optional()
    .openapi({ description: "FHIR conditional create: search parameters (e.g. `identifier=system|value`); an existing match is returned instead of creating" }),
});

patientRoutes.openapi(
  createRoute({
    method: "post",
    path: "/v1/phi/Patient",
    middleware: [requireFhirJson()],
    request: { body, headers: ifNoneExist },
    responses: {
      201: { description: "Created", content: fhirJson(ResourceOut) },
      200: { description: "Conditional create: the one existing match, nothing created", content: fhirJson(ResourceOut) },
      ...fhirErrors(409, 412, 413, 415),
    },
  }),
  async (c) => {
    const criteria = c.req.valid("header")["if-none-exist"];
    // A conditional create searches and may answer with the match: it needs r and s as well as c,
    // or a create-only client could read records through it (the flaw of CVE-2026-113876 in HAPI).
    enforce(decideResource(c.get("principal").scopes, "Patient", ...(criteria === undefined ? ["c" as const] : (["c", "r", "s"] as const))));
    const input = c.req.valid("json");
    const cfg = await phiSettings(c);
    // The server assigns ids (FHIR create ignores a client id).
    const id = crypto.randomUUID();
    const version = { type: "Patient" as const, id, versionId: 1, patientId: id, body: input, values: patientValues(input, id) };
    if (criteria === undefined) {
      const { row, resource } = await writeVersion(c, cfg, "create", version, new Date());
      return c.json(resource ?? { resourceType: "Patient", id }, 201, resourceHeaders(row, true));
    }
    // FHIR R4 http.html#ccreate: one match -> 200 with it, several -> 412, none -> create. The create is guarded by
    // the same criteria inside its own transaction, so of concurrent conditional creates that all found none, one
    // creates and the others answer with its Patient (their records: a failed create, reason conditional_match).
    const scope = scopeOf(c);
    const conds = await conditionalCriteria(cfg, criteria);
    /** The one live match, read and recorded; undefined when there is none (412 when there are several). */
    const theMatch = async () => {
      const matches = await conditionalMatches(scope, cfg, criteria, conds);
      if (matches.length > 1) throw new ApiError(412, "multiple_matches", "The If-None-Exist criteria match more than one Patient.");
      const head = matches[0];
      if (!head) return undefined;
      const resource = await presentVersion(cfg.bodies, head);
      await recordSuccess(c, { action: "read", resourceType: "Patient", resourceId: head.id, patientIds: [head.id] }, new Date());
      return { head, resource };
    };
    const existing = await theMatch();
    if (existing) return c.json(existing.resource, 200, resourceHeaders(existing.head, true));
    const { row, resource, written } = await createGuarded(c, cfg, version, noLiveMatch(scope.tenant, "Patient", conds), new Date());
    if (written) return c.json(resource ?? { resourceType: "Patient", id }, 201, resourceHeaders(row, true));
    // A concurrent create matching the criteria committed first: its Patient is the answer.
    const winner = await theMatch();
    if (winner) return c.json(winner.resource, 200, resourceHeaders(winner.head, true));
    throw new ApiError(409, "conditional_create_conflict", "A Patient matching If-None-Exist was created and removed while this request ran; send it again.");
  },
);

patientRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/Patient/{id}",
    request: { params: idParam },
    responses: { 200: { description: "The current version", content: fhirJson(ResourceOut) }, ...fhirErrors(404, 410) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "read", "Patient"));
    // Most reads never get here: src/read-first.ts answers them with the same readResource, without the app.
    const { resource, headers } = await readResource(c, "read", "Patient", c.req.valid("param").id);
    return c.json(resource, 200, headers);
  },
);

patientRoutes.openapi(
  createRoute({
    method: "put",
    path: "/v1/phi/Patient/{id}",
    middleware: [requireFhirJson()],
    request: { params: idParam, headers: ifMatch, body },
    responses: { 200: { description: "Updated: a new version", content: fhirJson(ResourceOut) }, ...fhirErrors(404, 410, 412, 413, 415) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "update", "Patient"));
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    // FHIR update: the body's id must be the URL's id (R4 http.html#update).
    if (input.id !== id) throw new ApiError(400, "id_mismatch", "The resource id must equal the id in the URL.");
    const cfg = await phiSettings(c);
    const head = await readHead(scopeOf(c), "Patient", id);
    // Ids are server-assigned: no update-as-create, no resurrection of a deleted record.
    enforce(decideReadable(head));
    if (!head) throw new ApiError(404, "not_found");
    enforce(decideVersionMatch(c.req.valid("header")["if-match"], head));
    const { row, resource } = await writeVersion(
      c,
      cfg,
      "update",
      { type: "Patient", id, versionId: head.version_id + 1, patientId: id, body: input, values: patientValues(input, id) },
      new Date(),
    );
    return c.json(resource ?? { resourceType: "Patient", id }, 200, resourceHeaders(row, true));
  },
);

patientRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/v1/phi/Patient/{id}",
    request: { params: idParam, headers: ifMatch },
    responses: { 204: { description: "Deleted: a tombstone version was added" }, ...fhirErrors(404, 410, 412) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "delete", "Patient"));
    const { id } = c.req.valid("param");
    const cfg = await phiSettings(c);
    const head = await readHead(scopeOf(c), "Patient", id);
    enforce(decideReadable(head));
    if (!head) throw new ApiError(404, "not_found");
    enforce(decideVersionMatch(c.req.valid("header")["if-match"], head));
    const { row } = await writeVersion(
      c,
      cfg,
      "delete",
      { type: "Patient", id, versionId: head.version_id + 1, patientId: id, body: null, values: [] },
      new Date(),
    );
    return c.body(null, 204, { ETag: `W/"${row.version_id}"` });
  },
);
