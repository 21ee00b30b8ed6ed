import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ConfigError, ENV_IDENTITY, envBool, envInt, parseConfig } from "../../../shared/config";
import {
  blindIndex,
  decryptField,
  digestsEqual,
  encryptField,
  fromBase64Url,
  normalizeForIndex,
  parseKeyring,
  randomToken,
  sealedKid,
  sha256Hex,
  timingSafeEqualStr,
  toBase64Url,
  toHex,
} from "../../../shared/crypto";
import { ApiError } from "../../../shared/errors";
import { d1Check, healthRoutes, serviceCheck } from "../../../shared/health";
import { createApp } from "../../../shared/http";
import { counter, histogram, snapshot, upDownCounter } from "../../../shared/metrics";
import { assertScopes, PRINCIPAL_MEMO_MAX, principalMemoSizes, signPrincipal, verifyPrincipal, type Principal } from "../../../shared/principal";
import { allowedScopes, hasAllScopes, isScopeToken, parseScopeString, requestWithin, scopeCovers } from "../../../shared/scopes";
import { z } from "zod";

const key32 = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));

describe("scopes", () => {
  it("matches exact scopes and resource wildcards, nothing else", () => {
    expect(scopeCovers(["phi:*"], "phi:read")).toBe(true);
    expect(scopeCovers(["phi:*"], "payment:read")).toBe(false);
    expect(scopeCovers(["phi:read"], "phi:write")).toBe(false);
    expect(scopeCovers(["admin"], "admin")).toBe(true);
    expect(scopeCovers(["*"], "admin")).toBe(false);
    expect(hasAllScopes(["phi:*", "synthetic:generate"], ["phi:write", "synthetic:generate"])).toBe(true);
    expect(hasAllScopes(["phi:*"], ["phi:write", "synthetic:generate"])).toBe(false);
    expect(parseScopeString("a:b  a:b c:d")).toEqual(["a:b", "c:d"]);
    expect(parseScopeString(undefined)).toEqual([]);
    for (const ok of ["phi:read", "phi:*", "admin"]) expect(isScopeToken(ok)).toBe(true);
    for (const bad of ["PHI:read", "phi", "*", "phi:read:x", "phi:", ":read", "a b"]) expect(isScopeToken(bad)).toBe(false);
    expect(allowedScopes(["billing", "nonexistent"], ["audit:read"]).sort()).toEqual(["audit:read", "payment:read", "payment:refund", "payment:write"]);
    expect(requestWithin(["phi:*"], "phi:*")).toBe(true);
    expect(requestWithin(["phi:read", "phi:write"], "phi:*")).toBe(false);
  });
});

describe("crypto", () => {
  it("encrypts with the current key, decrypts with any key of the ring, binds the AAD", async () => {
    const old = `k1:${key32()}`;
    const ringOld = await parseKeyring(old);
    const sealedOld = await encryptField(ringOld, "Jane Doe", "patient.name");
    const ring = await parseKeyring(`k2:${key32()},${old}`);
    const sealedNew = await encryptField(ring, "Jane Doe", "patient.name");
    expect(sealedKid(sealedOld)).toBe("k1");
    expect(sealedKid(sealedNew)).toBe("k2");
    expect(sealedNew).not.toContain("Jane");
    expect(await decryptField(ring, sealedOld, "patient.name")).toBe("Jane Doe");
    expect(await decryptField(ring, sealedNew, "patient.name")).toBe("Jane Doe");
    await expect(decryptField(ring, sealedNew, "patient.address")).rejects.toThrow();
    await expect(decryptField(ringOld, sealedNew, "patient.name")).rejects.toThrow(/no key/);
    await expect(decryptField(ring, "v2.k1.a.b")).rejects.toThrow(/malformed/);
    for (const bad of ["", "k1", `k1:${toBase64Url(new Uint8Array(16))}`, "bad kid!:abc"]) {
      await expect(parseKeyring(bad)).rejects.toThrow();
    }
  });

  it("makes blind indexes that ignore case and spacing but not the field", async () => {
    const k = key32();
    expect(normalizeForIndex("  Jane   DOE ")).toBe("jane doe");
    expect(await blindIndex(k, "family", "Doe")).toBe(await blindIndex(k, "family", " doe "));
    expect(await blindIndex(k, "family", "Doe")).not.toBe(await blindIndex(k, "given", "Doe"));
    expect(await blindIndex(k, "family", "Doe")).not.toBe(await blindIndex(key32(), "family", "Doe"));
  });

  it("compares in constant time and encodes base64url both ways", async () => {
    expect(await timingSafeEqualStr("abc", "abc")).toBe(true);
    expect(await timingSafeEqualStr("abc", "abd")).toBe(false);
    expect(await timingSafeEqualStr("abc", "abcd")).toBe(false);
    const digest = "a".repeat(63) + "b";
    expect(digestsEqual(digest, `${digest}`)).toBe(true);
    expect(digestsEqual(digest, "a".repeat(64))).toBe(false);
    expect(digestsEqual(digest, digest.slice(1))).toBe(false);
    for (const size of [0, 1, 2, 3, 31, 32, 33, 100]) {
      const bytes = crypto.getRandomValues(new Uint8Array(size));
      const text = toBase64Url(bytes);
      expect(text).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(fromBase64Url(text)).toEqual(bytes);
    }
    // Only unpadded base64url: the standard alphabet, padding and whitespace are refused.
    for (const bad of ["a+b/", "YQ==", "Y Q", "YQ\n", "A"]) expect(() => fromBase64Url(bad), bad).toThrow();
    expect(randomToken(32, "x_")).toMatch(/^x_[A-Za-z0-9_-]{43}$/);
  });

  it("writes hex as two lowercase digits a byte, from bytes or a buffer, and SHA-256 as the known digests", async () => {
    for (const size of [0, 1, 16, 32, 33]) {
      const bytes = crypto.getRandomValues(new Uint8Array(size));
      const expected = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
      expect(toHex(bytes)).toBe(expected);
      expect(toHex(bytes.buffer)).toBe(expected);
    }
    expect(toHex(new Uint8Array([0, 9, 10, 15, 16, 255]))).toBe("00090a0f10ff");
    expect(await sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("principal hand-off", () => {
  const p: Principal = { sub: "cli_a", clientId: "cli_a", roles: [], scopes: ["phi:read"], tokenId: "j", tenantId: "ten_default", shard: 0, ip: "1.2.3.4", iat: 1000 };
  it("verifies what the gateway signed and refuses anything else", async () => {
    const k = key32();
    const h = await signPrincipal(k, p);
    expect(await verifyPrincipal(k, h, 1010)).toEqual({ ok: true, principal: p });
    expect(await verifyPrincipal(k, h, 1100)).toEqual({ ok: false, reason: "stale" });
    expect(await verifyPrincipal(key32(), h, 1010)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verifyPrincipal(k, undefined, 1010)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyPrincipal(k, "a.b.c", 1010)).toEqual({ ok: false, reason: "malformed" });
    expect(await verifyPrincipal(k, "a.!!", 1010)).toEqual({ ok: false, reason: "malformed" });
    expect(await verifyPrincipal(k, "x".repeat(9000), 1010)).toEqual({ ok: false, reason: "oversized" });
    const [payload] = h.split(".");
    const tampered = toBase64Url(new TextEncoder().encode(JSON.stringify({ ...p, scopes: ["admin"] })));
    expect((await verifyPrincipal(k, `${tampered}.${h.split(".")[1] ?? ""}`, 1010)).ok).toBe(false);
    expect(payload).toBeTruthy();
    // Signed but not a principal.
    const notJson = toBase64Url(new TextEncoder().encode("nope"));
    const { hmacSha256 } = await import("../../../shared/crypto");
    expect(await verifyPrincipal(k, `${notJson}.${toBase64Url(await hmacSha256(k, notJson))}`, 1010)).toEqual({ ok: false, reason: "malformed" });
    const wrongShape = toBase64Url(new TextEncoder().encode(JSON.stringify({ sub: 1 })));
    expect(await verifyPrincipal(k, `${wrongShape}.${toBase64Url(await hmacSha256(k, wrongShape))}`, 1010)).toEqual({ ok: false, reason: "malformed" });
    expect(() => assertScopes(p, "phi:write")).toThrow(ApiError);
    expect(() => assertScopes(p, "phi:read")).not.toThrow();
  });

  it("remembers signed and verified principals per key, still checks their age, and stays bounded", async () => {
    const k = key32();
    const mine = { ...p, tokenId: `memo-${crypto.randomUUID()}` };
    const before = principalMemoSizes();
    const h = await signPrincipal(k, mine);
    expect(await signPrincipal(k, { ...mine })).toBe(h);
    expect(principalMemoSizes().signed).toBe(Math.min(before.signed + 1, PRINCIPAL_MEMO_MAX));
    // Another key never gets this key's signature from memory.
    const other = key32();
    const h2 = await signPrincipal(other, mine);
    expect(h2).not.toBe(h);
    expect((await verifyPrincipal(other, h2, 1010)).ok).toBe(true);
    const first = await verifyPrincipal(k, h, 1010);
    const again = await verifyPrincipal(k, h, 1011);
    expect(first.ok && again.ok && first.principal === again.principal).toBe(true);
    // The remembered principal is shared, so nobody may change it.
    if (again.ok) expect(() => again.principal.scopes.push("admin")).toThrow(TypeError);
    // A hit is still refused once stale, and a remembered header is no good under another key.
    expect(await verifyPrincipal(k, h, 1061)).toEqual({ ok: false, reason: "stale" });
    expect(await verifyPrincipal(other, h, 1010)).toEqual({ ok: false, reason: "bad_signature" });
    // Bounded: a flood of distinct principals leaves at most PRINCIPAL_MEMO_MAX of each.
    for (let i = 0; i < PRINCIPAL_MEMO_MAX + 10; i++) {
      const signed = await signPrincipal(k, { ...mine, tokenId: `flood-${i}` });
      await verifyPrincipal(k, signed, 1010);
    }
    expect(principalMemoSizes()).toEqual({ signed: PRINCIPAL_MEMO_MAX, verified: PRINCIPAL_MEMO_MAX });
  });
});

describe("config, health, metrics", () => {
  it("parses config once per env object and names bad settings without values", () => {
    const schema = z.object({ A: envInt(5), B: envBool(false), S: z.string().min(3) });
    expect(parseConfig(schema, { S: "abc" })).toEqual({ A: 5, B: false, S: "abc" });
    expect(parseConfig(schema, { S: "abc", A: "7", B: "true" })).toEqual({ A: 7, B: true, S: "abc" });
    try {
      parseConfig(schema, { S: "ab" });
      throw new Error("should fail");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).toContain("S");
      expect((e as Error).message).not.toContain("ab");
    }
  });

  it("keys the config cache on the env behind a per-request proxy, and on the schema", () => {
    const schema = z.object({ S: z.string() });
    const other = z.object({ S: z.string().transform((v) => v.length) });
    const env = { S: "first" };
    const first = parseConfig(schema, env);
    // A proxy per request, as the tracing library builds around the env the telemetry wrapper marked.
    Object.defineProperty(env, ENV_IDENTITY, { value: env });
    const proxied = new Proxy(env, {});
    env.S = "changed";
    // Same env behind the proxy: the parsed object itself comes back, not a re-parse.
    expect(parseConfig(schema, proxied)).toBe(first);
    expect(parseConfig(other, env)).toEqual({ S: 7 });
    expect(parseConfig(schema, { S: "x" })).toEqual({ S: "x" });
  });

  it("readiness answers 503 naming the dependency that is down", async () => {
    const app = healthRoutes<{ DB?: D1Database }>({
      name: "x",
      environment: () => "test",
      timeoutMs: 50,
      checks: (e) => ({
        db: d1Check(e.DB),
        missing: d1Check(undefined),
        svc: serviceCheck(undefined),
        slow: () => new Promise((r) => setTimeout(r, 500)),
        broken: () => Promise.reject(new Error("down")),
      }),
    });
    const res = await app.request("/readiness", {}, { DB: env.DB });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: "unavailable",
      checks: { db: "ok", missing: "unavailable", svc: "unavailable", slow: "unavailable", broken: "unavailable" },
    });
    const down = await healthRoutes({ name: "x", environment: () => "t", checks: () => ({ s: serviceCheck({ fetch: () => Promise.resolve(new Response("no", { status: 500 })) } as unknown as Fetcher) }) }).request("/readiness");
    expect(down.status).toBe(503);
  });

  it("aggregates counters, up-down counters and histograms by label set", () => {
    const c = counter("test_counter_total");
    c.add(1, { a: "x" });
    c.add(2, { a: "x" });
    c.add(-5, { a: "x" });
    c.add(1, { a: "y" });
    const u = upDownCounter("test_inflight");
    u.add(1);
    u.add(-1);
    const h = histogram("test_seconds", "", "s", [0.1, 1]);
    h.record(0.05, { r: "/x" });
    h.record(0.5, { r: "/x" });
    h.record(5, { r: "/x" });
    const snap = snapshot();
    const cs = snap.find((m) => m.name === "test_counter_total");
    expect(cs?.points).toEqual(expect.arrayContaining([{ labels: { a: "x" }, value: 3 }, { labels: { a: "y" }, value: 1 }]));
    expect(snap.find((m) => m.name === "test_inflight")?.points).toEqual([{ labels: {}, value: 0 }]);
    expect(snap.find((m) => m.name === "test_seconds")?.points[0]).toMatchObject({ count: 3, sum: 5.55, min: 0.05, max: 5, buckets: [1, 1, 1] });
  });
});

describe("metrics export", () => {
  it("flushes on the interval or the size bound, never when empty", async () => {
    const { flushDue } = await import("../../../shared/metrics-export");
    const policy = { intervalMs: 10_000, maxPoints: 100 };
    expect(flushDue(policy, 0, 5_000, 0)).toBe(false);
    expect(flushDue(policy, 0, 5_000, 10)).toBe(false);
    expect(flushDue(policy, 0, 10_000, 1)).toBe(true);
    expect(flushDue(policy, 0, 1_000, 100)).toBe(true);
  });

  it("serializes deltas as OTLP JSON with the original metric names, then starts again from zero", async () => {
    const { toResourceMetrics } = await import("../../../shared/metrics-export");
    const { drain, counter: mkCounter, histogram: mkHist } = await import("../../../shared/metrics");
    const { JsonMetricsSerializer } = await import("@opentelemetry/otlp-transformer");
    drain();
    mkCounter("auth_security_events_total").add(2, { event_type: "token_expired", severity: "low" });
    mkHist("auth_request_duration_seconds").record(0.02, { endpoint: "/oauth/token", method: "POST", status: "200" });
    const batch = drain();
    expect(drain()).toEqual([]);
    const bytes = JsonMetricsSerializer.serializeRequest(toResourceMetrics(batch, "auth", "test", 1_000, 11_000));
    const doc = JSON.parse(new TextDecoder().decode(bytes)) as {
      resourceMetrics: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeMetrics: { metrics: { name: string; sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: { asDouble: number }[] }; histogram?: { dataPoints: { count: number; bucketCounts: number[] }[] } }[] }[] }[];
    };
    const rm = doc.resourceMetrics[0];
    expect(rm?.resource.attributes).toEqual(expect.arrayContaining([{ key: "service.name", value: { stringValue: "auth" } }, { key: "deployment.environment", value: { stringValue: "test" } }]));
    const metrics = rm?.scopeMetrics[0]?.metrics ?? [];
    const events = metrics.find((m) => m.name === "auth_security_events_total");
    expect(events?.sum).toMatchObject({ aggregationTemporality: 1, isMonotonic: true });
    expect(events?.sum?.dataPoints[0]?.asDouble).toBe(2);
    expect(metrics.find((m) => m.name === "auth_request_duration_seconds")?.histogram?.dataPoints[0]?.count).toBe(1);
  });

  it("keeps a gauge's last value per label set and serializes it as an OTLP gauge", async () => {
    const { toResourceMetrics } = await import("../../../shared/metrics-export");
    const { drain, gauge: mkGauge } = await import("../../../shared/metrics");
    const { JsonMetricsSerializer } = await import("@opentelemetry/otlp-transformer");
    drain();
    const size = mkGauge("test_database_size_bytes", "size", "By");
    size.set(100, { database: "DB" });
    size.set(250, { database: "DB" });
    size.set(7, { database: "DB_1" });
    const batch = drain();
    expect(batch.find((m) => m.name === "test_database_size_bytes")?.points).toEqual([
      { labels: { database: "DB" }, value: 250 },
      { labels: { database: "DB_1" }, value: 7 },
    ]);
    const doc = JSON.parse(new TextDecoder().decode(JsonMetricsSerializer.serializeRequest(toResourceMetrics(batch, "phi", "test", 1_000, 11_000)))) as {
      resourceMetrics: { scopeMetrics: { metrics: { name: string; unit: string; gauge?: { dataPoints: { asDouble: number; attributes: unknown[] }[] }; sum?: unknown }[] }[] }[];
    };
    const m = doc.resourceMetrics[0]?.scopeMetrics[0]?.metrics.find((x) => x.name === "test_database_size_bytes");
    expect(m?.sum).toBeUndefined();
    expect(m?.unit).toBe("By");
    expect(m?.gauge?.dataPoints.map((p) => p.asDouble)).toEqual([250, 7]);
    // Drained: nothing is exported again until a new value is set.
    expect(drain().find((x) => x.name === "test_database_size_bytes")).toBeUndefined();
  });

  it("redacts identifiers and query values from URLs and drops sensitive attributes", async () => {
    const { redactAttribute, redactUrl } = await import("../../../shared/redact");
    expect(redactUrl("https://gw/v1/phi/Patient/pat_123/_history/2?family=Smith&_count=5")).toBe("https://gw/v1/phi/Patient/{id}/_history/{id}?family=REDACTED&_count=REDACTED");
    expect(redactAttribute("url.path", "/v1/payments/pay_9/capture")).toBe("/v1/payments/{id}/capture");
    expect(redactAttribute("http.request.header.authorization", "Bearer x")).toBeUndefined();
    expect(redactAttribute("db.statement", "SELECT 1")).toBe("SELECT 1");
  });

  it("redacts a URL without parsing it the same way as with a parse, and parses whatever is unusual", async () => {
    const { redactPath, redactQuery, redactUrl } = await import("../../../shared/redact");
    const parsed = (raw: string) => {
      const u = new URL(raw);
      return `${u.protocol}//${u.host}${redactPath(u.pathname)}${redactQuery(u.search)}`;
    };
    for (const raw of [
      "https://gw/v1/phi/Patient/pat_123?family=Smith",
      "http://127.0.0.1:8787/v1/payments/pay_9/capture",
      "https://phi.internal/readiness",
      "https://gw/v1/phi/Patient/_search?name=a&_count=5#frag",
      "HTTPS://gw/v1/phi/",
    ]) expect(redactUrl(raw)).toBe(parsed(raw));
    // Credentials and backslashes are left to the URL parser: neither the password nor a smuggled segment survives.
    expect(redactUrl("https://user:secret@gw/v1/phi/Patient/1")).toBe("https://gw/v1/phi/Patient/{id}");
    expect(redactUrl("https://gw\\pat_1/v1/phi")).not.toContain("pat_1");
    expect(redactUrl("https://gw?x=1")).toBe("https://gw/?x=REDACTED");
  });
});

describe("the shared app's edge", () => {
  const app = createApp({ service: "edge-test", maxBodyBytes: 16 });
  app.get("/things/:id", (c) => c.json({ id: c.req.param("id") }));
  app.post("/things", async (c) => c.json({ got: (await c.req.text()).length }, 201));
  const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;
  const edgeHeaders = (res: Response) => {
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("strict-transport-security")).toContain("max-age=");
    expect(res.headers.get("x-request-id")).toMatch(/^[\w-]+$/);
  };

  it("answers 405 with Allow for a known path and the wrong method, 404 for an unknown path, as problem+json", async () => {
    const wrong = await app.request("/things/1", { method: "DELETE" }, {}, ctx);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("GET, HEAD");
    expect(await wrong.json()).toMatchObject({ status: 405, code: "method_not_allowed" });
    edgeHeaders(wrong);
    const unknown = await app.request("/nothing", {}, {}, ctx);
    expect(unknown.status).toBe(404);
    edgeHeaders(unknown);
    const post = await app.request("/things", { method: "GET" }, {}, ctx);
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("POST");
  });

  it("limits bodies with or without a declared length, and lets a small one through", async () => {
    const declared = await app.request("/things", { method: "POST", body: "x".repeat(17), headers: { "content-length": "17" } }, {}, ctx);
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ code: "payload_too_large" });
    edgeHeaders(declared);
    const chunks = (n: number) =>
      new ReadableStream({
        start(controller) {
          for (let i = 0; i < n; i++) controller.enqueue(new TextEncoder().encode("xxxx"));
          controller.close();
        },
      });
    const streamed = await app.request("/things", { method: "POST", body: chunks(5) }, {}, ctx);
    expect(streamed.status).toBe(413);
    edgeHeaders(streamed);
    const small = await app.request("/things", { method: "POST", body: chunks(3) }, {}, ctx);
    expect(small.status).toBe(201);
    expect(await small.json()).toEqual({ got: 12 });
    edgeHeaders(small);
    // A body that fails mid-stream is an error answered like any other: generic, with the edge's headers.
    const broken = new ReadableStream({
      pull(controller) {
        controller.error(new TypeError("stream broke"));
      },
    });
    const failed = await app.request("/things", { method: "POST", body: broken }, {}, ctx);
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ code: "internal_error" });
    edgeHeaders(failed);
  });

  it("runs a worker's own per-request hooks once per request, with the finished request", async () => {
    const seen: { route: string; status: number }[] = [];
    let started = 0;
    const hooked = createApp({ service: "edge-hooks", hooks: { start: () => started++, done: (r) => seen.push({ route: r.route, status: r.status }) } });
    hooked.get("/things/:id", (c) => c.json({ id: c.req.param("id") }));
    expect((await hooked.request("/things/7", {}, {}, ctx)).status).toBe(200);
    expect((await hooked.request("/things/7", { method: "POST" }, {}, ctx)).status).toBe(405);
    expect(started).toBe(2);
    expect(seen).toEqual([
      { route: "/things/:id", status: 200 },
      { route: "unmatched", status: 405 },
    ]);
  });
});
