import { scopeOf } from "../store/scope";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { decideScope, enforce } from "../access";
import { auditState } from "../audit/middleware";
import { phiSettings } from "../config";
import { observationValues } from "../fhir/index-tokens";
import { ObservationSchema, subjectPatientId } from "../fhir/observation";
import { resourceHeaders } from "../service/present";
import { readResource } from "../service/read";
import { writeVersion } from "../service/write";
import { readHead } from "../store/resources";
import { FHIR_REQUEST, fhirErrors, fhirJson, phiRouter, requireFhirJson, ResourceId, ResourceOut } from "./openapi";

/** FHIR R4 Observation: create and read (search lives in search.ts). */
export const observationRoutes = phiRouter();

observationRoutes.openapi(
  createRoute({
    method: "post",
    path: "/v1/phi/Observation",
    middleware: [requireFhirJson()],
    request: { body: { content: { [FHIR_REQUEST]: { schema: ObservationSchema } }, required: true } },
    responses: { 201: { description: "Created", content: fhirJson(ResourceOut) }, ...fhirErrors(413, 415, 422) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "create", "Observation"));
    const input = c.req.valid("json");
    const patientId = subjectPatientId(input);
    auditState(c).patients = [patientId];
    // The subject must be a live Patient of this server: an Observation always concerns a known record.
    const subject = await readHead(scopeOf(c), "Patient", patientId);
    if (!subject || subject.deleted) throw new ApiError(422, "unknown_subject", "The subject is not a Patient of this server.");
    const cfg = await phiSettings(c);
    const id = crypto.randomUUID();
    const { row, resource } = await writeVersion(
      c,
      cfg,
      "create",
      { type: "Observation", id, versionId: 1, patientId, body: input, values: observationValues(input, id) },
      new Date(),
    );
    return c.json(resource ?? { resourceType: "Observation", id }, 201, resourceHeaders(row, true));
  },
);

observationRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/Observation/{id}",
    request: { params: z.object({ id: ResourceId }) },
    responses: { 200: { description: "The current version", content: fhirJson(ResourceOut) }, ...fhirErrors(404, 410) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "read", "Observation"));
    // Most reads never get here: src/read-first.ts answers them with the same readResource, without the app.
    const { resource, headers } = await readResource(c, "read", "Observation", c.req.valid("param").id);
    return c.json(resource, 200, headers);
  },
);
