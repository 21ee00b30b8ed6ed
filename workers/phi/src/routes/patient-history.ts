import { scopeOf } from "../store/scope";
import { createRoute, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { decideAuditScope, decideScope, enforce } from "../access";
import { recordSuccess } from "../audit/middleware";
import { phiSettings } from "../config";
import { publicBase } from "../service/base-url";
import { etag, presentVersion } from "../service/present";
import { readResource } from "../service/read";
import { queryAudit } from "../store/audit-query";
import { readHead, readHistory, readVersion } from "../store/resources";
import { BundleOut, fhirErrors, fhirJson, phiRouter, ResourceId, ResourceOut } from "./openapi";

/** Patient _history (FHIR R4 http.html#history), vread, and the HIPAA accounting of disclosures. */
export const patientHistoryRoutes = phiRouter();

const idParam = z.object({ id: ResourceId });
const HistoryQuery = z.object({
  _count: z.coerce.number().int().min(1).max(100).default(20),
  _before: z.coerce.number().int().min(2).optional(),
});

patientHistoryRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/Patient/{id}/_history",
    request: { params: idParam, query: HistoryQuery },
    responses: { 200: { description: "Every version, newest first", content: fhirJson(BundleOut) }, ...fhirErrors(404) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "history", "Patient"));
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    const cfg = await phiSettings(c);
    const rows = await readHistory(scopeOf(c), "Patient", id, q._count + 1, q._before);
    if (rows.length === 0 && !(await readHead(scopeOf(c), "Patient", id))) throw new ApiError(404, "not_found", "No resource has this id.");
    const page = rows.slice(0, q._count);
    const base = publicBase(c);
    const entry = await Promise.all(
      page.map(async (r) =>
        r.deleted
          ? {
              fullUrl: `${base}/Patient/${id}`,
              request: { method: "DELETE", url: `Patient/${id}` },
              response: { status: "204", etag: etag(r.version_id), lastModified: r.last_updated },
            }
          : {
              fullUrl: `${base}/Patient/${id}`,
              resource: await presentVersion(cfg.bodies, r),
              request: { method: r.version_id === 1 ? "POST" : "PUT", url: r.version_id === 1 ? "Patient" : `Patient/${id}` },
              response: { status: r.version_id === 1 ? "201" : "200", etag: etag(r.version_id), lastModified: r.last_updated },
            },
      ),
    );
    const last = page.at(-1);
    const link = [{ relation: "self", url: `${base}/Patient/${id}/_history?_count=${q._count}${q._before ? `&_before=${q._before}` : ""}` }];
    if (rows.length > q._count && last) link.push({ relation: "next", url: `${base}/Patient/${id}/_history?_count=${q._count}&_before=${last.version_id}` });
    await recordSuccess(c, { action: "history", resourceType: "Patient", resourceId: id, patientIds: [id] }, new Date());
    return c.json({ resourceType: "Bundle" as const, type: "history", link, entry }, 200);
  },
);

patientHistoryRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/Patient/{id}/_history/{vid}",
    request: { params: z.object({ id: ResourceId, vid: z.coerce.number().int().min(1).max(999_999_999) }) },
    responses: { 200: { description: "That version", content: fhirJson(ResourceOut) }, ...fhirErrors(404, 410) },
  }),
  async (c) => {
    enforce(decideScope(c.get("principal").scopes, "vread", "Patient"));
    const { id, vid } = c.req.valid("param");
    const { resource, headers } = await readResource(c, "vread", "Patient", id, vid);
    return c.json(resource, 200, headers);
  },
);

const AccessEntry = z.object({
  at: z.string(),
  actor: z.object({ sub: z.string(), client_id: z.string(), roles: z.array(z.string()) }),
  action: z.string(),
  outcome: z.string(),
  purpose_of_use: z.string(),
  request_id: z.string(),
});

patientHistoryRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/Patient/{id}/$access-log",
    request: {
      params: idParam,
      query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(100), cursor: z.coerce.number().int().min(0).default(0) }),
    },
    responses: {
      200: {
        description: "Who accessed this patient's record, and when (HIPAA 164.528 accounting of disclosures)",
        content: { "application/json": { schema: z.object({ patient: z.string(), data: z.array(AccessEntry), next_cursor: z.number().nullable() }) } },
      },
      ...fhirErrors(404),
    },
  }),
  async (c) => {
    enforce(decideAuditScope(c.get("principal").scopes, "access-log"));
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    // An accounting of disclosures is about a record that exists: an unknown id is a 404, as on every instance route.
    if (!(await readVersion(scopeOf(c), "Patient", id, 1))) throw new ApiError(404, "not_found");
    const { rows, next } = await queryAudit(scopeOf(c), { patient: id, after: q.cursor, limit: q.limit });
    const data = rows.map((r) => ({
      at: r.at,
      actor: { sub: r.actor_sub, client_id: r.actor_client, roles: r.actor_roles ? r.actor_roles.split(",") : [] },
      action: r.action,
      outcome: r.outcome,
      purpose_of_use: r.purpose_of_use,
      request_id: r.request_id,
    }));
    await recordSuccess(c, { action: "access-log", resourceType: "Patient", resourceId: id, patientIds: [id] }, new Date());
    return c.json({ patient: id, data, next_cursor: next }, 200);
  },
);
