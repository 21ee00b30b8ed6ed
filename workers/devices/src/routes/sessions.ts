import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../../../../shared/errors";
import { validationHook, type AppVariables } from "../../../../shared/http";
import { assertScopes } from "../../../../shared/principal";
import { deviceAccess, liveAccess, type Decision } from "../policy";
import { Registry } from "../registry";
import { DeviceIdParam } from "../schemas/device";
import { json, problem } from "../schemas/problem";
import { AlarmPage, AlarmsQuery, IngestResult, ReadingBatch, ReadingPage, ReadingsQuery, Status } from "../schemas/reading";
import { DEVICE_HEADER, MAX_VIEWERS, ROLE_HEADER, TENANT_HEADER } from "../session/device-session";
import { sessionStub } from "../session/stub";

type Ctx = Context<{ Bindings: Env; Variables: AppVariables }>;
const app = new OpenAPIHono<{ Bindings: Env; Variables: AppVariables }>({ defaultHook: validationHook });

function enforce(d: Decision): void {
  if (!d.ok) throw new ApiError(d.status, d.code, d.detail);
}

async function existing(c: Ctx, id: string) {
  const device = await new Registry(c.env.DB, c.get("principal").tenantId).get(id);
  if (!device) throw new ApiError(404, "device_not_found", "No device has this id.");
  return device;
}

/** Hands a checked WebSocket upgrade to the device's object, with the role it was granted. */
async function upgrade(c: Ctx, id: string, role: "device" | "viewer"): Promise<Response> {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "This endpoint is a WebSocket.", { headers: { upgrade: "websocket" } });
  }
  const headers = new Headers(c.req.raw.headers);
  headers.set(ROLE_HEADER, role);
  headers.set(DEVICE_HEADER, id);
  headers.set(TENANT_HEADER, c.get("principal").tenantId);
  const res = await sessionStub(c.env, c.get("principal").tenantId, id).fetch(c.req.url, { headers });
  if (res.status === 410) throw new ApiError(410, "device_decommissioned", "This device is decommissioned.");
  if (res.status === 429) throw new ApiError(429, "too_many_viewers", `This device already has ${MAX_VIEWERS} live viewers; try again when one has left.`);
  // Re-wrapped: a Durable Object's response has immutable headers, and the shared middleware sets some.
  return new Response(null, { status: res.status, webSocket: res.webSocket, headers: res.headers });
}

const wsResponses = {
  101: { description: "Switching Protocols (WebSocket)" },
  403: problem("Not this device's credentials"),
  404: problem("No such device"),
  410: problem("Device decommissioned"),
  426: problem("Not a WebSocket upgrade"),
};

const session = createRoute({
  method: "get",
  path: "/v1/devices/{id}/session",
  summary: "The device's own telemetry socket: frames {seq, code, value, unit, device_time}, acks {ack: seq}",
  request: { params: DeviceIdParam },
  responses: wsResponses,
});

app.openapi(session, async (c) => {
  const p = c.get("principal");
  assertScopes(p, "device:connect");
  const { id } = c.req.valid("param");
  enforce(deviceAccess(p, id, p.deviceId === id ? await new Registry(c.env.DB, c.get("principal").tenantId).get(id) : undefined));
  return upgrade(c, id, "device");
});

const live = createRoute({
  method: "get",
  path: "/v1/devices/{id}/live",
  summary: "Clinicians' live feed: each stored reading, alarm and presence change",
  request: { params: DeviceIdParam },
  responses: { ...wsResponses, 429: problem(`The device already has ${MAX_VIEWERS} live viewers`) },
});

app.openapi(live, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const { id } = c.req.valid("param");
  enforce(liveAccess(await new Registry(c.env.DB, c.get("principal").tenantId).get(id)));
  return upgrade(c, id, "viewer");
});

const postReadings = createRoute({
  method: "post",
  path: "/v1/devices/{id}/readings",
  summary: "Batch upload for devices that cannot hold a socket; all or nothing, resent seqs acknowledged again",
  request: { params: DeviceIdParam, body: { content: { "application/json": { schema: ReadingBatch } }, required: true } },
  responses: {
    200: json(IngestResult, "Every reading stored (or already stored)"),
    400: problem("Invalid readings: none stored"),
    403: problem("Not this device's credentials"),
    404: problem("No such device"),
    410: problem("Device decommissioned"),
  },
});

app.openapi(postReadings, async (c) => {
  const p = c.get("principal");
  assertScopes(p, "device:connect");
  const { id } = c.req.valid("param");
  enforce(deviceAccess(p, id, p.deviceId === id ? await new Registry(c.env.DB, c.get("principal").tenantId).get(id) : undefined));
  const { readings } = c.req.valid("json");
  const outcome = await sessionStub(c.env, c.get("principal").tenantId, id).ingestBatch(readings);
  if (!outcome.ok) throw new ApiError(410, outcome.code, "This device is decommissioned.");
  return c.json(outcome.result, 200);
});

const getReadings = createRoute({
  method: "get",
  path: "/v1/devices/{id}/readings",
  request: { params: DeviceIdParam, query: ReadingsQuery },
  responses: { 200: json(ReadingPage, "Readings by seq"), 400: problem("Invalid query"), 404: problem("No such device") },
});

app.openapi(getReadings, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const { id } = c.req.valid("param");
  await existing(c, id);
  const q = c.req.valid("query");
  const rows = await sessionStub(c.env, c.get("principal").tenantId, id).history({ ...q, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  return c.json({ data: page, next_cursor: rows.length > q.limit ? (page.at(-1)?.seq ?? null) : null }, 200);
});

const status = createRoute({
  method: "get",
  path: "/v1/devices/{id}/status",
  request: { params: DeviceIdParam },
  responses: { 200: json(Status, "Presence and last reading per code"), 404: problem("No such device") },
});

app.openapi(status, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const { id } = c.req.valid("param");
  await existing(c, id);
  return c.json(await sessionStub(c.env, c.get("principal").tenantId, id).status(id), 200);
});

const alarms = createRoute({
  method: "get",
  path: "/v1/devices/{id}/alarms",
  request: { params: DeviceIdParam, query: AlarmsQuery },
  responses: { 200: json(AlarmPage, "Alarms raised, oldest first"), 400: problem("Invalid query"), 404: problem("No such device") },
});

app.openapi(alarms, async (c) => {
  assertScopes(c.get("principal"), "device:read");
  const { id } = c.req.valid("param");
  await existing(c, id);
  const q = c.req.valid("query");
  const rows = await sessionStub(c.env, c.get("principal").tenantId, id).alarms({ ...q, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  return c.json({ data: page, next_cursor: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null }, 200);
});

export default app;
