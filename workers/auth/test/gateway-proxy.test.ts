import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { API_CSP, SECURITY_HEADERS } from "../../../shared/http";
import { PRINCIPAL_HEADER, verifyPrincipal } from "../../../shared/principal";
import worker from "../src/index";
import { BASE, comparable, gwDirect, PER_REQUEST, seedPatient, token, viaApp } from "./helpers";

function jsonLines(spy: { mock: { calls: unknown[][] } }): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const call of spy.mock.calls) {
    try {
      const parsed: unknown = JSON.parse(String(call[0]));
      if (parsed && typeof parsed === "object") out.push(parsed as Record<string, unknown>);
    } catch {
      // Lines this test does not own (the runtime's) are not JSON: skipped.
    }
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

/** What the service behind the route receives (its binding pointed at a worker that echoes the request). */
async function received(path: string, headers: Record<string, string>): Promise<{ url: string; headers: Record<string, string>; status: number }> {
  const ctx = createExecutionContext();
  const echo = { ...env, PHI: env.PRINCIPAL_ECHO };
  const handler = worker as Required<Pick<ExportedHandler<Env>, "fetch">>;
  const init: RequestInit = { headers };
  const res = await handler.fetch(new Request(BASE + path, init) as Request<unknown, IncomingRequestCfProperties>, echo, ctx);
  const body = await res.json<{ url: string; headers: Record<string, string> }>();
  await waitOnExecutionContext(ctx);
  return { ...body, status: res.status };
}

describe("what a service receives from the gateway", () => {
  it("the client's headers less the ones it may never pass, plus the gateway's own: the same by the proxy path and the app", async () => {
    const tok = await token("phi:read");
    const client = {
      authorization: `Bearer ${tok}`,
      cookie: "session=client-cookie",
      "x-forwarded-host": "evil.example",
      "x-forwarded-proto": "http",
      traceparent: "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
      tracestate: "vendor=client",
      accept: "application/fhir+json",
      "x-purpose-of-use": "TREAT",
      "x-request-id": "client-req-echo-1",
      "x-client-extra": "kept",
    };
    const proxied = await received("/v1/phi/Patient/abc?_format=json", client);
    // A client-sent principal header sends the request to the app (a security event): it is replaced there.
    const viaTheApp = await received("/v1/phi/Patient/abc?_format=json", { ...client, [PRINCIPAL_HEADER]: "forged.value" });
    for (const [via, r] of [["proxy", proxied], ["app", viaTheApp]] as const) {
      expect(r.status, via).toBe(200);
      expect(r.url, via).toBe("https://phi.internal/v1/phi/Patient/abc?_format=json");
      const h = r.headers;
      // Never passed through: the bearer token, the client's cookies, its claimed origin, its trace context.
      expect(h.authorization, via).toBeUndefined();
      expect(h.cookie, via).toBeUndefined();
      expect(h.tracestate, via).toBeUndefined();
      expect(JSON.stringify(h), via).not.toContain(tok);
      expect(h["x-forwarded-host"], via).toBe("gw.test");
      expect(h["x-forwarded-proto"], via).toBe("https");
      expect(h.traceparent, via).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      expect(h.traceparent, via).not.toContain("0123456789abcdef0123456789abcdef");
      // Passed through as sent.
      expect(h.accept, via).toBe("application/fhir+json");
      expect(h["x-purpose-of-use"], via).toBe("TREAT");
      expect(h["x-client-extra"], via).toBe("kept");
      expect(h["x-request-id"], via).toBe("client-req-echo-1");
      // The gateway's signed principal, never the client's.
      const v = await verifyPrincipal(env.GATEWAY_HMAC_KEY, h[PRINCIPAL_HEADER], Math.floor(Date.now() / 1000));
      expect(v.ok, via).toBe(true);
    }
    // Both paths forward the same set of headers.
    expect(Object.keys(proxied.headers).sort()).toEqual(Object.keys(viaTheApp.headers).sort());
  });
});

describe("the gateway's proxy path (GET of a table route without the Hono app)", () => {
  it("answers exactly as the app does: status, body and every header but the per-request ones", async () => {
    const id = await seedPatient();
    const tok = await token("phi:read");
    for (const path of [`/v1/phi/Patient/${id}`, `/v1/phi/Patient/${id}/_history/1`, "/v1/phi/Patient/pat-missing", `/v1/phi/Patient?_id=${id}`]) {
      // One request id for both, so the answers that name it (an OperationOutcome's diagnostics) match too.
      const init = { headers: { authorization: `Bearer ${tok}`, "x-request-id": `cmp-${crypto.randomUUID()}` } };
      const fast = await gwDirect(path, init);
      const slow = await viaApp(path, init);
      expect(fast.status, path).toBe(slow.status);
      expect(comparable(fast), path).toEqual(comparable(slow));
      const [a, b] = [await fast.json<Record<string, unknown>>(), await slow.json<Record<string, unknown>>()];
      // A search Bundle carries its own id, timestamp and sealed (randomly encrypted) cursor link; its results must match.
      const results = (x: Record<string, unknown>) => ({ type: x.type, total: x.total, entry: x.entry });
      if (a.resourceType === "Bundle") expect(results(a)).toEqual(results(b));
      else expect(a).toEqual(b);
    }
  });

  it("forwards a body of declared length as the app does; the app answers anything else", async () => {
    const tok = await token("phi:write");
    const patient = JSON.stringify({ resourceType: "Patient", name: [{ family: "Proxy", given: ["Body"] }], gender: "unknown" });
    const init = () => ({ method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json", "content-length": String(patient.length) }, body: patient });
    const fast = await gwDirect("/v1/phi/Patient", init());
    const slow = await viaApp("/v1/phi/Patient", init());
    expect(fast.status).toBe(201);
    expect(slow.status).toBe(201);
    const names = (r: Response) => [...r.headers.keys()].filter((k) => !PER_REQUEST.has(k)).sort();
    expect(names(fast)).toEqual(names(slow));
    const [a, b] = [await fast.json<{ name: unknown; id: string }>(), await slow.json<{ name: unknown; id: string }>()];
    expect(a.name).toEqual(b.name);
    expect(a.id).not.toBe(b.id);
    // Over the app's 1 MiB limit by its declared length: the app's 413, nothing forwarded.
    const big = "x".repeat(1024 * 1024 + 1);
    const tooBig = await gwDirect("/v1/phi/Patient", { method: "POST", headers: { authorization: `Bearer ${tok}`, "content-type": "application/fhir+json", "content-length": String(big.length) }, body: big });
    expect(tooBig.status).toBe(413);
  });

  it("keeps the client's safe X-Request-Id, writes the same access line and refuses a bad token as the app does", async () => {
    const id = await seedPatient();
    const tok = await token("phi:read");
    const spy = vi.spyOn(console, "log");
    const res = await gwDirect(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${tok}`, "x-request-id": "client-req-1" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("client-req-1");
    const line = jsonLines(spy).find((l) => l.msg === "request" && l.request_id === "client-req-1" && l.service === "auth");
    expect(line).toMatchObject({ level: "info", method: "GET", route: "/v1/phi/Patient/:id", status: 200 });
    expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof line?.sub).toBe("string");
    // Failures fall through to the app before anything was recorded: its exact answers.
    const noScope = await gwDirect(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${await token("payment:read")}` } });
    expect(noScope.status).toBe(403);
    expect(noScope.headers.get("www-authenticate")).toContain("insufficient_scope");
    const bad = await gwDirect(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${tok}x` } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("content-type")).toBe("application/problem+json");
    // A client-sent principal header is the app's to refuse and record.
    const spoof = await gwDirect(`/v1/phi/Patient/${id}`, { headers: { authorization: `Bearer ${tok}`, "x-gateway-principal": "forged.forged" } });
    expect(spoof.status).toBe(200);
    const events = await env.DB.prepare("SELECT COUNT(*) AS n FROM security_events WHERE event_type = 'principal_header_spoofed'").first<{ n: number }>();
    expect(events?.n ?? 0).toBeGreaterThan(0);
  });
});

describe("security headers", () => {
  it("are the ones Hono's secureHeaders sets with the platform's options", async () => {
    const reference = new Hono();
    reference.use(
      secureHeaders({
        strictTransportSecurity: "max-age=63072000; includeSubDomains; preload",
        xFrameOptions: "DENY",
        referrerPolicy: "no-referrer",
        xContentTypeOptions: "nosniff",
        contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
        crossOriginResourcePolicy: "same-origin",
        crossOriginOpenerPolicy: "same-origin",
        xXssProtection: "0",
      }),
    );
    reference.get("/", (c) => c.text("ok"));
    const res = await reference.request("/");
    const expected = Object.fromEntries([...res.headers].filter(([k]) => k !== "content-type"));
    expect(Object.fromEntries(SECURITY_HEADERS)).toEqual(expected);
    expect(expected["content-security-policy"]).toBe(API_CSP);
  });
});
