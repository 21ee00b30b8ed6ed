import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { randomToken } from "../../../../shared/crypto";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { logger } from "../../../../shared/logger";
import { assertScopes } from "../../../../shared/principal";
import { auditChange } from "../audit";
import { credentialsApi } from "../credentials";
import { Registry } from "../registry";
import { DecommissionInput, Device, DeviceIdParam, DeviceInput, DeviceListQuery, DevicePage, RegisteredDevice } from "../schemas/device";
import { json, problem } from "../schemas/problem";
import { sessionStub } from "../session/stub";

const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

const register = createRoute({
  method: "post",
  path: "/v1/devices",
  request: { body: { content: { "application/json": { schema: DeviceInput } }, required: true } },
  responses: {
    201: json(RegisteredDevice, "Registered; the credentials' secret is shown this once"),
    400: problem("Invalid input"),
    409: problem("UDI or serial already registered"),
    503: problem("Credentials or audit trail unavailable; nothing registered"),
  },
});

app.openapi(register, async (c) => {
  const actor = c.get("principal");
  assertScopes(actor, "device:write");
  const input = c.req.valid("json");
  const registry = new Registry(c.env.DB, c.get("principal").tenantId);
  const taken = await registry.conflict(input);
  if (taken) throw new ApiError(409, `${taken}_taken`, `A device with this ${taken === "udi" ? "UDI" : "serial"} is already registered.`);
  const id = randomToken(16, "dev_");
  const auth = credentialsApi(c.env);
  let creds: { client_id: string; client_secret: string };
  try {
    creds = await auth.createDeviceClient({ deviceId: id, name: `device ${id}`, createdBy: actor.sub, tenantId: actor.tenantId });
  } catch (err) {
    logger.error("device_credentials_failed", { request_id: c.get("requestId"), error_class: err instanceof Error ? err.name : typeof err });
    throw new ApiError(503, "credentials_unavailable", "Device credentials could not be created; nothing was registered.");
  }
  const now = new Date().toISOString();
  const device: Device = { id, ...input, status: "active", client_id: creds.client_id, created_at: now, created_by: actor.sub, decommissioned_at: null };
  try {
    await auditChange(
      c,
      { deviceId: id, action: "device.register", actor, oldValue: null, newValue: device, reason: "registration", requestId: c.get("requestId"), time: now },
      [registry.insert(device)],
    );
  } catch (err) {
    // Nothing was registered: the credentials just made must not stay usable.
    await auth.disableDeviceClients(id);
    const lost = await registry.conflict(input);
    if (lost) throw new ApiError(409, `${lost}_taken`, `A device with this ${lost === "udi" ? "UDI" : "serial"} is already registered.`);
    throw err;
  }
  logger.info("device_registered", { request_id: c.get("requestId"), device_id: id, sub: actor.sub });
  return c.json({ ...device, credentials: creds }, 201, { location: `/v1/devices/${id}` });
});

const list = createRoute({
  method: "get",
  path: "/v1/devices",
  request: { query: DeviceListQuery },
  responses: { 200: json(DevicePage, "A page of devices, by id"), 400: problem("Invalid query") },
});

app.openapi(list, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const q = c.req.valid("query");
  const rows = await new Registry(c.env.DB, c.get("principal").tenantId).list({ ...q, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  return c.json({ data: page, next_cursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null }, 200);
});

const read = createRoute({
  method: "get",
  path: "/v1/devices/{id}",
  request: { params: DeviceIdParam },
  responses: { 200: json(Device, "The device"), 404: problem("No such device") },
});

app.openapi(read, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const device = await new Registry(c.env.DB, c.get("principal").tenantId).get(c.req.valid("param").id);
  if (!device) throw new ApiError(404, "device_not_found", "No device has this id.");
  return c.json(device, 200);
});

const decommission = createRoute({
  method: "post",
  path: "/v1/devices/{id}/decommission",
  request: { params: DeviceIdParam, body: { content: { "application/json": { schema: DecommissionInput } }, required: true } },
  responses: {
    200: json(Device, "Decommissioned: credentials disabled, sessions closed"),
    404: problem("No such device"),
    409: problem("Already decommissioned"),
  },
});

app.openapi(decommission, async (c) => {
  const actor = c.get("principal");
  assertScopes(actor, "device:write");
  const { id } = c.req.valid("param");
  const { reason } = c.req.valid("json");
  const registry = new Registry(c.env.DB, c.get("principal").tenantId);
  const before = await registry.get(id);
  if (!before) throw new ApiError(404, "device_not_found", "No device has this id.");
  if (before.status !== "active") {
    // A decommission whose push to the session object failed (its client got a 500) is completed by a retry: the
    // push is idempotent, so the object stops taking readings and closes its sockets even then.
    await sessionStub(c.env, c.get("principal").tenantId, id).decommission();
    throw new ApiError(409, "device_decommissioned", "This device is already decommissioned.");
  }
  // Credentials first: if a later step fails the device is locked out (fail closed), and a retry completes it.
  const disabled = await credentialsApi(c.env).disableDeviceClients(id);
  const now = new Date().toISOString();
  const after: typeof before = { ...before, status: "decommissioned", decommissioned_at: now };
  try {
    await auditChange(
      c,
      { deviceId: id, action: "device.decommission", actor, oldValue: { status: before.status }, newValue: { status: after.status }, reason, requestId: c.get("requestId"), time: now },
      registry.decommission(id, now),
    );
  } catch (err) {
    if ((await registry.get(id))?.status !== "active") throw new ApiError(409, "device_decommissioned", "This device is already decommissioned.");
    throw err;
  }
  await sessionStub(c.env, c.get("principal").tenantId, id).decommission();
  logger.info("device_decommissioned", { request_id: c.get("requestId"), device_id: id, sub: actor.sub, credentials_disabled: disabled });
  return c.json(after, 200);
});

export default app;
