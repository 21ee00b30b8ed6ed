import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { logger } from "../../../../shared/logger";
import { assertScopes } from "../../../../shared/principal";
import { auditChange } from "../audit";
import { checkIfMatch, versionEtag } from "../policy";
import { Registry } from "../registry";
import { DeviceIdParam } from "../schemas/device";
import { json, problem } from "../schemas/problem";
import { Thresholds, ThresholdsInput } from "../schemas/thresholds";
import { sessionStub } from "../session/stub";
import { ThresholdStore } from "../thresholds";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

const read = createRoute({
  method: "get",
  path: "/v1/devices/{id}/thresholds",
  request: { params: DeviceIdParam },
  responses: { 200: json(Thresholds, "Current alarm limits; ETag names the version"), 404: problem("No such device") },
});

app.openapi(read, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const { id } = c.req.valid("param");
  if (!(await new Registry(c.env.DB, c.get("principal").tenantId).get(id))) throw new ApiError(404, "device_not_found", "No device has this id.");
  const t = await new ThresholdStore(c.env.DB, c.get("principal").tenantId).current(id);
  return c.json(t, 200, { etag: versionEtag(t.version) });
});

const update = createRoute({
  method: "put",
  path: "/v1/devices/{id}/thresholds",
  summary: "Replace the alarm limits: If-Match with the current version's ETag and a reason are required",
  request: { params: DeviceIdParam, body: { content: { "application/json": { schema: ThresholdsInput } }, required: true } },
  responses: {
    200: json(Thresholds, "The new version"),
    400: problem("Invalid limits or missing reason"),
    404: problem("No such device"),
    410: problem("Device decommissioned"),
    412: problem("If-Match does not name the current version"),
    428: problem("If-Match missing"),
  },
});

app.openapi(update, async (c) => {
  const actor = c.get("principal");
  assertScopes(actor, "device:write");
  const { id } = c.req.valid("param");
  const { limits, reason } = c.req.valid("json");
  const device = await new Registry(c.env.DB, c.get("principal").tenantId).get(id);
  if (!device) throw new ApiError(404, "device_not_found", "No device has this id.");
  if (device.status !== "active") throw new ApiError(410, "device_decommissioned", "This device is decommissioned.");
  const store = new ThresholdStore(c.env.DB, c.get("principal").tenantId);
  const before = await store.current(id);
  const pre = checkIfMatch(c.req.header("if-match"), before.version);
  if (!pre.ok) throw new ApiError(pre.status, pre.code, pre.detail, { headers: { etag: versionEtag(before.version) } });
  const version = before.version + 1;
  const now = new Date().toISOString();
  try {
    await auditChange(
      c,
      { deviceId: id, action: "thresholds.update", actor, oldValue: { version: before.version, limits: before.limits }, newValue: { version, limits }, reason, requestId: c.get("requestId"), time: now },
      [store.insert({ deviceId: id, version, limits, setAt: now, setBy: actor.sub, reason })],
    );
  } catch (err) {
    // Another change from the same version committed first: this one was rolled back whole.
    const latest = await store.current(id);
    if (latest.version !== before.version) {
      throw new ApiError(412, "version_mismatch", "The thresholds changed since this version; read them again.", { headers: { etag: versionEtag(latest.version) } });
    }
    throw err;
  }
  await sessionStub(c.env, c.get("principal").tenantId, id).applyThresholds(version, limits);
  logger.info("thresholds_updated", { request_id: c.get("requestId"), device_id: id, sub: actor.sub, version });
  return c.json({ device_id: id, version, limits, set_at: now, set_by: actor.sub, reason }, 200, { etag: versionEtag(version) });
});

export default app;
