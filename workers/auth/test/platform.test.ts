import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { OpenAPIHono } from "@hono/zod-openapi";
import { SpanImpl } from "@microlabs/otel-cf-workers";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { afterEach, describe, expect, it, vi } from "vitest";
import { counter } from "../../../shared/metrics";
import { policyFrom, scheduleMetricsFlush } from "../../../shared/metrics-export";
import { serveOpenApi } from "../../../shared/openapi";
import { otlpUrl, parseOtlpHeaders, traceConfig } from "../../../shared/telemetry";
import { toOtlpSpan } from "../../../shared/telemetry/otlp";
import { traceProcessor } from "../../../shared/telemetry/processor";
import { batchPolicyFrom, exportTarget, samplerRatio } from "../../../shared/telemetry/target";
import { jsonLines } from "../../../shared/testing/log-lines";
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
  it("reads the endpoint, headers, batching and sampling from env; no endpoint means no target", () => {
    expect(parseOtlpHeaders("api-key=abc, x-team = ops ,bad,=x")).toEqual({ "api-key": "abc", "x-team": "ops" });
    expect(parseOtlpHeaders(undefined)).toEqual({});
    // Percent-encoded values are decoded; one that is not valid percent-encoding is kept as written, not thrown on.
    expect(parseOtlpHeaders("authorization=Basic%20abc,x-api-key=ab%zz%")).toEqual({ authorization: "Basic abc", "x-api-key": "ab%zz%" });
    expect(otlpUrl("https://otel.example:4318/", "traces")).toBe("https://otel.example:4318/v1/traces");
    expect(otlpUrl("https://otel.example:4318", "logs")).toBe("https://otel.example:4318/v1/logs");
    expect(exportTarget({ ENVIRONMENT: "test" })).toBeUndefined();
    const target = exportTarget({ ENVIRONMENT: "test", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_EXPORTER_OTLP_HEADERS: "k=v" });
    expect(target).toMatchObject({ endpoint: "http://127.0.0.1:9", headers: { k: "v" }, environment: "test", policy: { delayMs: 1000, maxBatch: 512 }, ratio: 1 });
    expect(batchPolicyFrom({ OTEL_BSP_SCHEDULE_DELAY: "250", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "64" })).toEqual({ delayMs: 250, maxBatch: 64 });
    expect(batchPolicyFrom({ OTEL_BSP_SCHEDULE_DELAY: "-1", OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "lots" })).toEqual({ delayMs: 1000, maxBatch: 512 });
    expect([samplerRatio({ OTEL_TRACES_SAMPLER_ARG: "0.25" }), samplerRatio({ OTEL_TRACES_SAMPLER_ARG: "2" }), samplerRatio({})]).toEqual([0.25, 1, 1]);
    const on = traceConfig("phi")({ ENVIRONMENT: "test", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }, new Request("https://x/"));
    expect(on.service).toMatchObject({ name: "phi", namespace: "health-platform" });
    expect("spanProcessors" in on && on.spanProcessors).toBe(traceProcessor);
    expect(on.handlers?.fetch?.acceptTraceContext).toBe(true);
    expect(traceConfig("auth")({}, new Request("https://x/")).handlers?.fetch?.acceptTraceContext).toBe(false);
    // One config object per service and ratio: the (patched) library parses each object once per isolate.
    expect(traceConfig("phi")({ ENVIRONMENT: "test", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }, new Request("https://x/"))).toBe(on);
    expect(traceConfig("phi")({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_TRACES_SAMPLER_ARG: "0.5" }, new Request("https://x/"))).not.toBe(on);
  });

  it("serializes a span to redacted OTLP/JSON: ids, query values and sensitive attributes go", () => {
    const span = new SpanImpl({
      name: "fetch GET /v1/phi/Patient/pat_123",
      // url.path repeats url.full and net.colo is the caller's network: neither is exported (SPAN_NOISE).
      attributes: { "url.full": "https://gw/v1/phi/Patient/pat_123?family=Smith", "url.path": "/v1/phi/Patient/pat_123", "net.colo": "AMS", "http.request.header.authorization": "Bearer x", "http.response.status_code": 200, ratio: 0.5, ok: true },
      resource: resourceFromAttributes({ "service.name": "phi" }),
      spanContext: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 },
      onEnd: () => undefined,
      startTime: 1_700_000_000_123,
    });
    span.end(1_700_000_000_456);
    const out = toOtlpSpan(span);
    expect(out).toMatchObject({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", name: "fetch GET /v1/phi/Patient/{id}", kind: 1 });
    expect(out.startTimeUnixNano).toBe("1700000000123000000");
    expect(out.endTimeUnixNano).toBe("1700000000456000000");
    expect(out.attributes).toEqual([
      { key: "url.full", value: { stringValue: "https://gw/v1/phi/Patient/{id}?family=REDACTED" } },
      { key: "http.response.status_code", value: { intValue: "200" } },
      { key: "ratio", value: { doubleValue: 0.5 } },
      { key: "ok", value: { boolValue: true } },
    ]);
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
    const logged = jsonLines(lines).find((l) => l.msg === "request" && l.request_id === res.headers.get("x-request-id"));
    expect(logged?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(logged?.trace_id).not.toBe(clientTrace);
    // The request the gateway forwarded carried that trace, not the client's: phi's audit record names it.
    const rid = res.headers.get("x-request-id") ?? "";
    const audited: string[] = [];
    for (const db of [env.PHI_DB, env.PHI_DB_1, env.PHI_DB_2, env.PHI_DB_3]) {
      const row = await db.prepare("SELECT trace_id FROM phi_audit WHERE request_id = ?").bind(rid).first<{ trace_id: string }>();
      if (row) audited.push(row.trace_id);
    }
    expect(audited).toEqual([logged?.trace_id]);
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
