import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { assertScopes } from "../../../../shared/principal";
import { LIMITS } from "../config";
import { DEFAULT_REFERENCE_DATE, DEFAULT_SEED, GENERATOR } from "../generator/constants";
import { buildBundle, type Slice } from "../output/bundle";
import { ndjsonStream } from "../output/ndjson";
import { Problem } from "../schemas/load";
import { BundleResponse, PatientsQuery } from "../schemas/patients";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

const route = createRoute({
  method: "get",
  path: "/v1/synthetic/patients",
  summary: "Deterministic synthetic FHIR R4 patients (Patient, vital-sign Observations, Conditions)",
  request: { query: PatientsQuery },
  responses: {
    200: {
      description: "A collection Bundle with a Provenance (format=bundle), or one resource per line (format=ndjson).",
      content: {
        "application/fhir+json": { schema: BundleResponse },
        "application/fhir+ndjson": { schema: z.string().openapi({ description: "One FHIR resource per line." }) },
      },
    },
    400: { description: "Invalid parameter or a limit exceeded (named in the problem).", content: { "application/problem+json": { schema: Problem } } },
  },
});

/** Refuses a count or offset past its limit, naming the limit. */
export function checkLimits(format: "bundle" | "ndjson", count: number, offset: number): void {
  const max = LIMITS[format];
  if (count > max) {
    throw new ApiError(400, "limit_exceeded", `count may be at most ${max} for format=${format}${format === "bundle" ? ` (use format=ndjson for up to ${LIMITS.ndjson})` : ""}.`, {
      extra: { parameter: "count", limit: max },
    });
  }
  if (offset + count > LIMITS.index) {
    throw new ApiError(400, "limit_exceeded", `offset + count may be at most ${LIMITS.index}.`, {
      extra: { parameter: "offset", limit: LIMITS.index },
    });
  }
}

/**
 * Documented with registerPath and served with a plain handler: zod-openapi types
 * only JSON and text bodies, and NDJSON is a stream. The query goes through the
 * same schema and the same 400 hook as every other route.
 */
app.openAPIRegistry.registerPath(route);

app.get(route.path, (c) => {
  assertScopes(c.get("principal"), "synthetic:generate");
  const parsed = PatientsQuery.safeParse(c.req.query());
  validationHook({ ...parsed, target: "query" });
  const q = parsed.data ?? {};
  const format = q.format ?? "bundle";
  const slice: Slice = {
    seed: q.seed ?? DEFAULT_SEED,
    referenceDate: q.reference_date ?? DEFAULT_REFERENCE_DATE,
    observations: q.observations !== "false",
    offset: q.offset ?? 0,
    count: q.count ?? 10,
  };
  checkLimits(format, slice.count, slice.offset);
  // What the Provenance records, also for NDJSON (which carries no Provenance line: see README).
  const headers = {
    "x-synthetic-generator": GENERATOR,
    "x-synthetic-seed": slice.seed,
    "x-synthetic-reference-date": slice.referenceDate,
  };
  if (format === "ndjson") {
    return new Response(ndjsonStream(slice), { status: 200, headers: { ...headers, "content-type": "application/fhir+ndjson" } });
  }
  return new Response(JSON.stringify(buildBundle(slice)), {
    status: 200,
    headers: { ...headers, "content-type": "application/fhir+json" },
  });
});

export default app;
