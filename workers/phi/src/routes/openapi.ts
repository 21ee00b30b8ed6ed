import type { PhiEnv } from "../env";
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../../../shared/errors";
import { validationHook } from "../../../../shared/http";
import { acceptableBodyType } from "../fhir/format";
import { FHIR_JSON } from "../fhir/outcome";

/** A router for one resource: the same validation hook as every worker (400 -> OperationOutcome here). */
export function phiRouter() {
  return new OpenAPIHono<PhiEnv>({ defaultHook: validationHook });
}

export const ResourceOut = z.object({ resourceType: z.string(), id: z.string() }).catchall(z.unknown()).openapi("FhirResource");
export const BundleOut = z
  .object({ resourceType: z.literal("Bundle"), type: z.string(), link: z.array(z.object({ relation: z.string(), url: z.string() })) })
  .catchall(z.unknown())
  .openapi("Bundle");
export const OperationOutcomeOut = z
  .object({ resourceType: z.literal("OperationOutcome"), issue: z.array(z.object({ severity: z.string(), code: z.string() }).catchall(z.unknown())) })
  .openapi("OperationOutcome");
export const ProblemOut = z
  .object({ type: z.string(), title: z.string(), status: z.number(), code: z.string() })
  .catchall(z.unknown())
  .openapi("Problem");

/** A resource id as the server assigns them (FHIR R4 datatypes.html#id). */
export const RESOURCE_ID = /^[A-Za-z0-9\-.]{1,64}$/;
export const ResourceId = z.string().regex(RESOURCE_ID);

const DESCRIPTIONS: Record<number, string> = {
  400: "Invalid resource or parameters",
  401: "Not forwarded by the gateway",
  403: "Missing scope",
  404: "No such resource",
  410: "Resource deleted",
  412: "If-Match does not name the current version",
  413: "Body too large",
  415: "Not application/fhir+json or application/json",
  422: "Resource refers to something that does not exist",
  503: "Audit trail or storage unavailable (audit_unavailable, storage_unavailable): nothing was done and nothing is returned",
};

/** Error responses of a FHIR route, each an OperationOutcome. */
export function fhirErrors(...statuses: number[]) {
  return Object.fromEntries(
    [400, 401, 403, 503, ...statuses].map((s) => [
      s,
      { description: DESCRIPTIONS[s] ?? "Error", content: { [FHIR_JSON]: { schema: OperationOutcomeOut } } },
    ]),
  );
}

export function problemErrors(...statuses: number[]) {
  return Object.fromEntries(
    [400, 401, 403, 503, ...statuses].map((s) => [
      s,
      { description: DESCRIPTIONS[s] ?? "Error", content: { "application/problem+json": { schema: ProblemOut } } },
    ]),
  );
}

export const fhirJson = <T extends z.ZodType>(schema: T) => ({ [FHIR_JSON]: { schema } });

/**
 * FHIR writes take application/fhir+json (FHIR R4 http.html#mime-type) or plain
 * application/json, which generic HTTP clients send; anything else is a 415 with a
 * clear code before the body is read. (The OpenAPI document names the FHIR type only:
 * declaring both would validate every body twice.)
 */
export const FHIR_REQUEST = "application/fhir+json";

export function requireFhirJson(): MiddlewareHandler {
  return async (c, next) => {
    if (!acceptableBodyType(c.req.header("content-type"))) {
      throw new ApiError(415, "unsupported_media_type", "Send application/fhir+json or application/json.");
    }
    await next();
  };
}
