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
import { Thresholds, ThresholdsInput, type Limits } from "../schemas/thresholds";
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
    503: problem("The new version is saved but the device's session could not be updated: send the same request again"),
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
  const tenantId = c.get("principal").tenantId;
  const store = new ThresholdStore(c.env.DB, tenantId);
  const session = sessionStub(c.env, tenantId, id);
  const before = await store.current(id);
  const pre = checkIfMatch(c.req.header("if-match"), before.version);
  if (!pre.ok) {
    // A repeat of the change that made the current version (its answer was lost, or its push to the session failed:
    // 503 below) is answered as that change, once the session holds it; any other stale version is a 412. Either
    // way the session is given the current version first (idempotent: it never goes back), so a retry repairs a
    // connected device still alarming on older limits.
    if (pre.status === 412 && before.version > 0) {
      await applyToSession(session, before.version, before.limits);
      if (isRepeat(c.req.header("if-match"), before, { limits, reason, setBy: actor.sub })) return c.json(before, 200, { etag: versionEtag(before.version) });
    }
    throw new ApiError(pre.status, pre.code, pre.detail, { headers: { etag: versionEtag(before.version) } });
  }
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
  await applyToSession(session, version, limits);
  logger.info("thresholds_updated", { request_id: c.get("requestId"), device_id: id, sub: actor.sub, version });
  return c.json({ device_id: id, version, limits, set_at: now, set_by: actor.sub, reason }, 200, { etag: versionEtag(version) });
});

/**
 * Tells the device's session object which limits are in force. A failure after the change committed is a 503 that
 * says so: the version is saved (and audited), a connected device alarms on the older limits until the session is
 * told, which the same request sent again does (the repeat above), as does the device's next connection.
 */
async function applyToSession(session: ReturnType<typeof sessionStub>, version: number, limits: Limits): Promise<void> {
  try {
    await session.applyThresholds(version, limits);
  } catch (err) {
    logger.error("thresholds_push_failed", { version, error_class: err instanceof Error ? err.name : typeof err });
    throw new ApiError(503, "thresholds_not_applied", `Version ${version} of the limits is saved, but the device's session could not be updated; send the same request again to apply it now (it also applies when the device reconnects).`, {
      headers: { etag: versionEtag(version) },
    });
  }
}

/** Whether a change naming the version before `current` asks for exactly what `current` holds, by the same actor. */
function isRepeat(ifMatch: string | undefined, current: Thresholds, asked: { limits: Limits; reason: string; setBy: string }): boolean {
  return (
    checkIfMatch(ifMatch, current.version - 1).ok &&
    current.set_by === asked.setBy &&
    current.reason === asked.reason &&
    canonicalLimits(current.limits) === canonicalLimits(asked.limits)
  );
}

/** Limits as text independent of key order (codes, then low/high). */
function canonicalLimits(limits: Limits): string {
  return JSON.stringify(
    Object.keys(limits)
      .sort()
      .map((code) => [code, limits[code]?.low ?? null, limits[code]?.high ?? null]),
  );
}

export default app;
