import type { PhiEnv } from "../env";
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { decideExport, decideExportFollowUp, enforce } from "../access";
import { auditState, recordSuccess } from "../audit/middleware";
import { acceptableBodyType } from "../fhir/format";
import { fhirErrors, phiRouter } from "../routes/openapi";
import { publicBase, publicOrigin } from "../service/base-url";
import { concatParts } from "./download";
import { parametersBody, parseExportParams, wantsAsync } from "./params";
import { manifest, progressText, retryAfterSeconds } from "./state";

/**
 * HL7 FHIR Bulk Data Access 2.0 export (https://hl7.org/fhir/uv/bulkdata/export.html):
 * kick-off at the system and Patient level, the status URL (poll, cancel) and the files.
 * Only the client that started a job sees it: anyone else gets the same 404 as for a
 * job that never existed. The work itself runs in the job's Durable Object (./job.ts).
 */
export const exportRoutes = phiRouter();

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const FILE_NAME = /^(Patient|Observation)-\d{1,6}\.ndjson$/;
const ManifestOut = z
  .object({ transactionTime: z.string(), request: z.string(), requiresAccessToken: z.boolean(), output: z.array(z.object({ type: z.string(), url: z.string(), count: z.number() })), error: z.array(z.unknown()) })
  .openapi("BulkExportManifest");
const kickOffResponses = {
  202: { description: "Accepted: poll the absolute URL in Content-Location", headers: z.object({ "Content-Location": z.string() }) },
  ...fhirErrors(415),
};

function jobStub(c: Context<PhiEnv>, id: string) {
  if (!JOB_ID.test(id)) throw new ApiError(404, "export_job_not_found", "No export job has this id.");
  return c.env.EXPORT_JOBS.get(c.env.EXPORT_JOBS.idFromName(id));
}

/** Query parameters, and for a POST the `Parameters` resource it may carry (export.html#post-body). */
async function kickOffParams(c: Context<PhiEnv>): Promise<[string, string][]> {
  const query = [...new URL(c.req.url).searchParams.entries()];
  if (c.req.method !== "POST") return query;
  const text = await c.req.text();
  if (text.trim() === "") return query;
  if (!acceptableBodyType(c.req.header("content-type"))) throw new ApiError(415, "unsupported_media_type", "Send a Parameters resource as application/fhir+json.");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "The body is not JSON.");
  }
  const params = parametersBody(body);
  if (params === null) throw new ApiError(400, "invalid_parameters", "The body must be a Parameters resource with one value[x] string per parameter.");
  return [...query, ...params];
}

async function kickOff(c: Context<PhiEnv>, level: "System" | "Patient"): Promise<Response> {
  const principal = c.get("principal");
  if (!wantsAsync(c.req.header("prefer"))) {
    throw new ApiError(400, "respond_async_required", "$export runs asynchronously: send Prefer: respond-async.");
  }
  const parsed = parseExportParams(await kickOffParams(c));
  if (!parsed.ok) throw new ApiError(400, parsed.code, parsed.detail);
  enforce(decideExport(principal.scopes, parsed.value.types));
  const id = crypto.randomUUID();
  const now = new Date();
  const url = new URL(c.req.url);
  const job = jobStub(c, id);
  await job.start({
    id,
    owner: principal.clientId,
    actor: auditState(c).actor,
    shard: principal.shard,
    request: `${publicOrigin(c)}${url.pathname}${url.search}`,
    types: parsed.value.types,
    since: parsed.value.since,
    transactionTime: now.toISOString(),
  });
  try {
    await recordSuccess(c, { action: "export", resourceType: level, resourceId: id, patientIds: [] }, now);
  } catch (err) {
    // No export without the record of its request: the job is withdrawn before it is announced.
    await job.cancel(principal.clientId);
    throw err;
  }
  return c.body(null, 202, { "Content-Location": `${publicBase(c)}/$export-status/${id}` });
}

for (const [path, level] of [
  ["/v1/phi/$export", "System"],
  ["/v1/phi/Patient/$export", "Patient"],
] as const) {
  for (const method of ["get", "post"] as const) {
    exportRoutes.openapi(
      createRoute({
        method,
        path,
        // Parameters are read by parseExportParams (repeats allowed, a POST's Parameters body too), not by a query schema.
        description: `Bulk Data ${level === "System" ? "system" : "Patient"}-level export kick-off. Prefer: respond-async is required; _type (Patient, Observation), _since (instant), _outputFormat (application/fhir+ndjson, application/ndjson, ndjson).`,
        responses: kickOffResponses,
      }),
      (c) => kickOff(c, level),
    );
  }
}

exportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/$export-status/{job}",
    description: "Status of an export job: 202 with X-Progress while it runs, then 200 with the manifest (only for the client that started it).",
    request: { params: z.object({ job: z.string() }) },
    responses: {
      200: { description: "The manifest", content: { "application/json": { schema: ManifestOut } } },
      202: { description: "Still running", headers: z.object({ "X-Progress": z.string(), "Retry-After": z.string() }) },
      ...fhirErrors(404, 500),
    },
  }),
  async (c) => {
    const principal = c.get("principal");
    enforce(decideExportFollowUp(principal.scopes));
    const { job: id } = c.req.valid("param");
    const job = await jobStub(c, id).view(principal.clientId);
    if (!job) throw new ApiError(404, "export_job_not_found", "No export job has this id.");
    if (job.status === "running") {
      return c.body(null, 202, { "X-Progress": progressText(job), "Retry-After": String(retryAfterSeconds(job)) });
    }
    if (job.status === "failed") throw new ApiError(500, "export_failed", "The export could not be completed; start a new one.");
    const base = publicBase(c);
    const body = manifest(job, (name) => `${base}/$export-file/${id}/${name}`);
    return c.json(body, 200, { Expires: new Date(job.expiresAt ?? job.transactionTime).toUTCString() });
  },
);

exportRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/v1/phi/$export-status/{job}",
    description: "Cancels an export job and deletes its files (export.html#bulk-data-delete-request).",
    request: { params: z.object({ job: z.string() }) },
    responses: { 202: { description: "Cancelled; its files are deleted" }, ...fhirErrors(404) },
  }),
  async (c) => {
    const principal = c.get("principal");
    enforce(decideExportFollowUp(principal.scopes));
    const { job: id } = c.req.valid("param");
    if (!(await jobStub(c, id).cancel(principal.clientId))) throw new ApiError(404, "export_job_not_found", "No export job has this id.");
    return c.body(null, 202);
  },
);

exportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/v1/phi/$export-file/{job}/{file}",
    description: "One NDJSON file of a completed export (requiresAccessToken: only the client that started it; gone after EXPORT_TTL_SECONDS).",
    request: { params: z.object({ job: z.string(), file: z.string() }) },
    responses: { 200: { description: "application/fhir+ndjson: one resource per line" }, ...fhirErrors(404) },
  }),
  async (c) => {
    const principal = c.get("principal");
    enforce(decideExportFollowUp(principal.scopes));
    const { job: id, file } = c.req.valid("param");
    const found = FILE_NAME.test(file) ? await jobStub(c, id).file(principal.clientId, file) : null;
    if (!found) throw new ApiError(404, "export_file_not_found", "No export file has this name.");
    // The download is recorded before a byte leaves; the patients are named by the job's disclosure records.
    await recordSuccess(c, { action: "export-download", resourceType: found.type, resourceId: id, patientIds: [] }, new Date());
    return c.body(concatParts(c.env.EXPORTS, found.parts), 200, { "Content-Type": "application/fhir+ndjson" });
  },
);
