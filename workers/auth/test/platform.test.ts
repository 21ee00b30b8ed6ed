import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it, vi } from "vitest";
import { counter } from "../../../shared/metrics";
import { policyFrom, scheduleMetricsFlush } from "../../../shared/metrics-export";
import { serveOpenApi } from "../../../shared/openapi";
import { otlpUrl, parseOtlpHeaders, redactSpans, traceConfig } from "../../../shared/telemetry";
import { SERVICES, fullPath } from "../src/gateway/route-table";
import { toOpenApiPath } from "../src/openapi/merge";
import { gw, gwDirect, token } from "./helpers";

type Doc = {
  openapi: string;
  tags: { name: string }[];
  paths: Record<string, Record<string, { tags?: string[]; security?: Record<string, string[]>[]; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: { oauth2: { flows: { clientCredentials: { tokenUrl: string; scopes: Record<string, string> } } } } };
};

describe("GET /openapi.json", () => {
  it("merges every worker's document under its prefix, with tags, scopes per operation and the OAuth 2 scheme", async () => {
    const res = await gw("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=60");
    const doc = await res.json<Doc>();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.tags.map((t) => t.name)).toEqual(["auth", "phi", "payments", "synthetic-phi", "devices"]);
    expect(doc.components.securitySchemes.oauth2.flows.clientCredentials.tokenUrl).toBe("http://127.0.0.1:8787/oauth/token");
    expect(Object.keys(doc.components.securitySchemes.oauth2.flows.clientCredentials.scopes)).toContain("device:connect");
    // Every route of the gateway's table is documented with exactly the scopes the gateway enforces.
    for (const svc of SERVICES) {
      for (const r of svc.routes) {
        const op = doc.paths[toOpenApiPath(fullPath(svc.prefix, r.path))]?.[r.method.toLowerCase()];
        expect(op, `${r.method} ${r.path}`).toBeDefined();
        if (r.public) {
          // Discovery documents need no token: no security requirement, no token errors.
          expect(op?.security).toEqual([]);
          expect(op?.responses).not.toHaveProperty("401");
          continue;
        }
        expect(op?.security).toEqual([{ oauth2: [...r.scopes] }]);
        expect(op?.responses).toHaveProperty("401");
      }
    }
    expect(doc.paths["/oauth/token"]?.post?.tags).toEqual(["auth"]);
    expect(doc.paths["/admin/clients"]?.post?.security).toEqual([{ oauth2: ["admin"] }]);
    // Service schemas are namespaced so two services never collide.
    expect(Object.keys(doc.components.schemas).some((k) => k.startsWith("phi."))).toBe(true);
    const refs = JSON.stringify(doc).match(/"#\/components\/schemas\/([^"]+)"/g) ?? [];
    for (const ref of refs) expect(Object.keys(doc.components.schemas)).toContain(ref.slice(22, -1));
    // Served from the isolate's cache the second time.
    expect(await (await gw("/openapi.json")).json()).toEqual(doc);
  });

  it("serves a worker's own document from its routes", async () => {
    const app = new OpenAPIHono();
    serveOpenApi(app, "demo");
    const doc = await (await app.request("/openapi.json")).json<{ info: { title: string } }>();
    expect(doc.info.title).toBe("demo");
  });
});

describe("telemetry configuration", () => {
  it("reads the endpoint and headers from env, and exports nothing without an endpoint", () => {
    expect(parseOtlpHeaders("api-key=abc, x-team = ops ,bad,=x")).toEqual({ "api-key": "abc", "x-team": "ops" });
    expect(parseOtlpHeaders(undefined)).toEqual({});
    expect(otlpUrl("https://otel.example:4318/", "traces")).toBe("https://otel.example:4318/v1/traces");
    const off = traceConfig("auth")({ ENVIRONMENT: "test" }, new Request("https://x/"));
    expect(off.service).toMatchObject({ name: "auth", namespace: "health-platform" });
    const done: number[] = [];
    (off as { exporter: { export(s: unknown[], cb: (r: { code: number }) => void): void } }).exporter.export([], (r) => done.push(r.code));
    expect(done).toEqual([0]);
    const on = traceConfig("phi")({ ENVIRONMENT: "test", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_EXPORTER_OTLP_HEADERS: "k=v" }, new Request("https://x/"));
    expect(on.handlers?.fetch?.acceptTraceContext).toBe(true);
    expect(traceConfig("auth")({}, new Request("https://x/")).handlers?.fetch?.acceptTraceContext).toBe(false);
  });

  it("redacts ids, query values and sensitive attributes from spans, and adds the environment", async () => {
    const { resourceFromAttributes } = await import("@opentelemetry/resources");
    const span = {
      name: "fetch GET /v1/phi/Patient/pat_123",
      attributes: { "url.full": "https://gw/v1/phi/Patient/pat_123?family=Smith", "http.request.header.authorization": "Bearer x", "http.response.status_code": 200 },
      resource: resourceFromAttributes({ "service.name": "phi" }),
    } as unknown as ReadableSpan;
    const [out] = redactSpans("staging")([span]);
    expect(out?.name).toBe("fetch GET /v1/phi/Patient/{id}");
    expect(out?.attributes).toEqual({ "url.full": "https://gw/v1/phi/Patient/{id}?family=REDACTED", "http.response.status_code": 200 });
    expect(out?.resource.attributes["deployment.environment"]).toBe("staging");
  });

  it("schedules a metrics export after the response only when one is due, and survives a collector that is down", async () => {
    expect(policyFrom({ OTEL_METRIC_EXPORT_INTERVAL: "2500" }).intervalMs).toBe(2500);
    expect(policyFrom({ OTEL_METRIC_EXPORT_INTERVAL: "nope" }).intervalMs).toBe(10_000);
    counter("test_flush_total").add(1);
    const ctx = createExecutionContext();
    expect(scheduleMetricsFlush({}, ctx, "auth", { intervalMs: 0, maxPoints: 1 })).toBe(false);
    counter("test_flush_total").add(1);
    expect(scheduleMetricsFlush({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }, ctx, "auth", { intervalMs: 0, maxPoints: 1 })).toBe(true);
    expect(scheduleMetricsFlush({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }, ctx, "auth", { intervalMs: 60_000, maxPoints: 1_000_000 })).toBe(false);
    await waitOnExecutionContext(ctx);
  });
});

describe("the gateway's request log", () => {
  afterEach(() => vi.restoreAllMocks());

  it("names the trace the gateway started, never a client's traceparent", async () => {
    const tok = await token("phi:read");
    const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    const res = await gwDirect("/v1/phi/Patient/pat-missing", { headers: { authorization: `Bearer ${tok}`, traceparent: `00-${clientTrace}-00f067aa0ba902b7-01` } });
    vi.restoreAllMocks();
    expect(res.status).toBe(404);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "request" && l.request_id === res.headers.get("x-request-id"));
    expect(logged?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(logged?.trace_id).not.toBe(clientTrace);
  });
});

describe("ClientRegistry (RPC for the devices worker)", () => {
  it("creates a device client bound to its device, whose token carries device_id, and disables it", async () => {
    const registry = (exports as unknown as { ClientRegistry: { createDeviceClient(i: { deviceId: string; name: string; createdBy: string }): Promise<{ client_id: string; client_secret: string }>; disableDeviceClients(id: string): Promise<number> } }).ClientRegistry;
    const creds = await registry.createDeviceClient({ deviceId: "dev_test_1", name: "monitor", createdBy: "cli_maker" });
    const row = await env.DB.prepare("SELECT roles, device_id FROM clients WHERE id = ?").bind(creds.client_id).first<{ roles: string; device_id: string }>();
    expect(row).toEqual({ roles: '["device"]', device_id: "dev_test_1" });
    const { clientToken } = await import("./helpers");
    const tok = await clientToken(creds);
    const intro = await (await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).json<{ device_id: string; scope: string }>();
    expect(intro).toMatchObject({ device_id: "dev_test_1", scope: "device:connect" });
    expect(await registry.disableDeviceClients("dev_test_1")).toBe(1);
    expect(await (await gw("/introspect", { headers: { authorization: `Bearer ${tok}` } })).json()).toEqual({ active: false });
    expect(await token("admin")).toBeTruthy();
  });
});
