import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { logger } from "../../../../shared/logger";
import { assertScopes, signPrincipal } from "../../../../shared/principal";
import { LIMITS, syntheticConfig } from "../config";
import { DEFAULT_REFERENCE_DATE } from "../generator/constants";
import { loadPatients } from "../load/loader";
import { loadPolicy } from "../load/policy";
import { LoadReport, LoadRequest, Problem } from "../schemas/load";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

/** 415 before validation: the body must be JSON (RFC 9110 15.5.16). */
const requireJson: MiddlewareHandler<{ Bindings: Env; Variables: AppVariables }> = async (c, next) => {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/json")) throw new ApiError(415, "unsupported_media_type", "Send application/json.");
  await next();
};

const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: Problem } } });

const route = createRoute({
  method: "post",
  path: "/v1/synthetic/load",
  summary: "Generate patients and write them into phi (conditional create: reruns do not duplicate)",
  middleware: [requireJson] as const,
  request: { body: { required: true, content: { "application/json": { schema: LoadRequest } } } },
  responses: {
    200: { description: "Every patient is in phi: created now or already there.", content: { "application/json": { schema: LoadReport } } },
    400: problem("Invalid body or a limit exceeded (named in the problem)."),
    403: problem("Loading is refused in this environment, or the caller lacks a scope."),
    415: problem("The body is not application/json."),
    502: problem("phi refused or failed part of the load; the problem lists what was written (load_incomplete)."),
  },
});

app.openapi(route, async (c) => {
  const principal = c.get("principal");
  assertScopes(principal, "synthetic:generate", "phi:write", "phi:read");
  const cfg = syntheticConfig(c.env);
  const decision = loadPolicy({ environment: cfg.ENVIRONMENT, allowLoad: cfg.ALLOW_LOAD });
  if (!decision.ok) {
    throw new ApiError(403, "load_disabled", "Loading synthetic patients is disabled in this environment.", {
      extra: { reason: decision.reason },
    });
  }
  const body = c.req.valid("json");
  if (body.count > LIMITS.load) {
    throw new ApiError(400, "limit_exceeded", `count may be at most ${LIMITS.load} per load.`, {
      extra: { parameter: "count", limit: LIMITS.load },
    });
  }
  const offset = body.offset ?? 0;
  if (offset + body.count > LIMITS.index) {
    throw new ApiError(400, "limit_exceeded", `offset + count may be at most ${LIMITS.index}.`, {
      extra: { parameter: "offset", limit: LIMITS.index },
    });
  }
  const slice = { seed: body.seed, referenceDate: body.reference_date ?? DEFAULT_REFERENCE_DATE, observations: false, offset, count: body.count };
  const traceparent = c.req.header("traceparent");
  // phi trusts only a gateway-signed principal: the caller's own, re-signed per batch so it never goes stale.
  const report = await loadPatients(
    async () => ({
      phi: c.env.PHI,
      principalHeader: await signPrincipal(cfg.GATEWAY_HMAC_KEY, { ...principal, iat: Math.floor(Date.now() / 1000) }),
      requestId: c.get("requestId"),
      ...(traceparent ? { traceparent } : {}),
    }),
    slice,
    cfg.LOAD_BATCH_SIZE,
  );
  logger.info("synthetic_load", {
    request_id: c.get("requestId"),
    created: report.created.length,
    existing: report.existing.length,
    failed: report.failed.length,
    not_attempted: report.not_attempted,
  });
  if (report.failed.length > 0) {
    throw new ApiError(502, "load_incomplete", "Loading stopped after phi refused or failed some patients; the report lists what phi holds.", {
      extra: { report },
    });
  }
  return c.json(report, 200);
});

export default app;
