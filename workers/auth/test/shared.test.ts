import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appendChained, canonicalJson, GENESIS_HASH, verifyChain } from "../../../shared/audit-chain";
import { ConfigError, envBool, envInt, parseConfig } from "../../../shared/config";
import {
  blindIndex,
  decryptField,
  encryptField,
  fromBase64Url,
  normalizeForIndex,
  parseKeyring,
  randomToken,
  sealedKid,
  timingSafeEqualStr,
  toBase64Url,
} from "../../../shared/crypto";
import { ApiError } from "../../../shared/errors";
import { d1Check, healthRoutes, serviceCheck } from "../../../shared/health";
import { counter, histogram, snapshot, upDownCounter } from "../../../shared/metrics";
import { assertScopes, signPrincipal, verifyPrincipal, type Principal } from "../../../shared/principal";
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
    const bytes = crypto.getRandomValues(new Uint8Array(33));
    expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
    expect(() => fromBase64Url("a+b/")).toThrow();
    expect(randomToken(32, "x_")).toMatch(/^x_[A-Za-z0-9_-]{43}$/);
  });
});

describe("principal hand-off", () => {
  const p: Principal = { sub: "cli_a", clientId: "cli_a", roles: [], scopes: ["phi:read"], tokenId: "j", ip: "1.2.3.4", iat: 1000 };
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
});

describe("audit chain", () => {
  it("appends gap-free under concurrency, verifies, and finds the first tampered row", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_audit (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, actor TEXT, n INTEGER)");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_data (id INTEGER PRIMARY KEY)");
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        appendChained(env.DB, {
          table: "test_audit",
          columns: { actor: `a${i}`, n: i },
          statements: [env.DB.prepare("INSERT INTO test_data (id) VALUES (?)").bind(i)],
        }),
      ),
    );
    expect(new Set(results.map((r) => r.seq)).size).toBe(40);
    const v = await verifyChain(env.DB, "test_audit", 7);
    expect(v).toMatchObject({ ok: true, records: 40 });
    const data = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_data").first<{ n: number }>();
    expect(data?.n).toBe(40);
    const first = await env.DB.prepare("SELECT prev_hash FROM test_audit WHERE seq = 1").first<{ prev_hash: string }>();
    expect(first?.prev_hash).toBe(GENESIS_HASH);

    const original = await env.DB.prepare("SELECT actor FROM test_audit WHERE seq = 17").first<{ actor: string }>();
    await env.DB.prepare("UPDATE test_audit SET actor = 'mallory' WHERE seq = 17").run();
    expect(await verifyChain(env.DB, "test_audit")).toMatchObject({ ok: false, broken_at: 17, reason: "hash_mismatch" });
    await env.DB.prepare("UPDATE test_audit SET actor = ? WHERE seq = 17").bind(original?.actor ?? null).run();
    expect((await verifyChain(env.DB, "test_audit")).ok).toBe(true);
    await env.DB.prepare("UPDATE test_audit SET prev_hash = ? WHERE seq = 5").bind(GENESIS_HASH).run();
    expect(await verifyChain(env.DB, "test_audit")).toMatchObject({ ok: false, broken_at: 5, reason: "prev_hash_mismatch" });
    await env.DB.prepare("DELETE FROM test_audit WHERE seq = 3").run();
    expect(await verifyChain(env.DB, "test_audit")).toMatchObject({ ok: false, broken_at: 3, reason: "gap" });
  });

  it("verifies in segments (after, limit): a walk gives the full verdict and head; breaks are found by their segment", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_audit_seg (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, actor TEXT)");
    for (let i = 0; i < 27; i++) await appendChained(env.DB, { table: "test_audit_seg", columns: { actor: `a${i}` } });
    const walk = async (limit: number, pageSize: number) => {
      const segments = [];
      let after: number | null = 0;
      while (after !== null && segments.length < 50) {
        const s = await verifyChain(env.DB, "test_audit_seg", { after, limit, pageSize });
        segments.push(s);
        after = s.next_after;
      }
      return segments;
    };
    const full = await verifyChain(env.DB, "test_audit_seg");
    const stored = await env.DB.prepare("SELECT hash FROM test_audit_seg WHERE seq = 27").first<{ hash: string }>();
    expect(full).toEqual({ ok: true, records: 27, head: stored?.hash, from: 1, to: 27, next_after: null, complete: true });
    for (const [limit, pageSize] of [[5, 2], [9, 1000], [27, 4], [26, 26], [1, 1]] as const) {
      const segs = await walk(limit, pageSize);
      expect(segs).toHaveLength(Math.ceil(27 / limit));
      expect(segs.every((s) => s.ok)).toBe(true);
      expect(segs.map((s) => s.records).reduce((a, b) => a + b, 0)).toBe(27);
      // Contiguous: each segment starts right after the previous one ends.
      segs.forEach((s, i) => expect(s.from).toBe(i * limit + 1));
      expect(segs.slice(0, -1).every((s) => !s.complete && s.next_after === s.to)).toBe(true);
      expect(segs.at(-1)).toMatchObject({ ok: true, head: full.ok ? full.head : "", to: 27, next_after: null, complete: true });
    }
    // A limit that ends exactly at the head is complete (nothing follows).
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 20, limit: 7 })).toMatchObject({ ok: true, records: 7, from: 21, to: 27, complete: true, next_after: null });
    // After the head itself: nothing to check, complete, head = that record's hash (resume later from there).
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 27 })).toEqual({ ok: true, records: 0, head: stored?.hash, from: null, to: null, next_after: null, complete: true });
    // Past the head: 404, not a verdict.
    await expect(verifyChain(env.DB, "test_audit_seg", { after: 28 })).rejects.toMatchObject({ status: 404, code: "audit_record_not_found" });
    for (const bad of [{ after: -1 }, { after: 1.5 }, { limit: 0 }, { limit: 2.5 }, { pageSize: 0 }]) {
      await expect(verifyChain(env.DB, "test_audit_seg", bad)).rejects.toThrow(RangeError);
    }

    // Tamper inside the 2nd segment (seq 8 with limit 5): the 1st still verifies, the 2nd names it.
    await env.DB.prepare("UPDATE test_audit_seg SET actor = 'mallory' WHERE seq = 8").run();
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 0, limit: 5 })).toMatchObject({ ok: true, to: 5, next_after: 5 });
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 5, limit: 5 })).toEqual({
      ok: false, records: 2, broken_at: 8, reason: "hash_mismatch", from: 6, to: 7, next_after: null, complete: false,
    });
    // The segment after the tampered record anchors on its stored hash, so the links after it still check out.
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 8 })).toMatchObject({ ok: true, records: 19, complete: true });
    // The tampered record's own hash was rewritten to match: its successor's link breaks instead.
    const h7 = await env.DB.prepare("SELECT hash FROM test_audit_seg WHERE seq = 7").first<{ hash: string }>();
    const { chainHash } = await import("../../../shared/audit-chain");
    await env.DB.prepare("UPDATE test_audit_seg SET hash = ? WHERE seq = 8").bind(await chainHash(h7?.hash ?? "", 8, { actor: "mallory" })).run();
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 5, limit: 5 })).toMatchObject({ ok: false, broken_at: 9, reason: "prev_hash_mismatch", to: 8 });
    expect((await verifyChain(env.DB, "test_audit_seg")).ok).toBe(false);
    // A removed record: a segment anchored on it reports the gap there, as a walk from genesis does.
    await env.DB.prepare("DELETE FROM test_audit_seg WHERE seq = 12").run();
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 12 })).toMatchObject({ ok: false, records: 0, broken_at: 12, reason: "gap" });
    expect(await verifyChain(env.DB, "test_audit_seg", { after: 10 })).toMatchObject({ ok: false, records: 1, broken_at: 12, reason: "gap", to: 11 });
  });

  it("trusts the isolate's last head only while it is still the chain's head (another writer, a reset table)", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_audit_head (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, actor TEXT)");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_data_head (id INTEGER PRIMARY KEY)");
    const append = (actor: string, id: number) =>
      appendChained(env.DB, { table: "test_audit_head", columns: { actor }, statements: [env.DB.prepare("INSERT INTO test_data_head (id) VALUES (?)").bind(id)] });
    expect((await append("a", 1)).seq).toBe(1);
    expect((await append("b", 2)).seq).toBe(2);
    // Another isolate appends seq 3 behind this one's back: the cached head (2) is stale.
    const { chainHash } = await import("../../../shared/audit-chain");
    const head = await env.DB.prepare("SELECT hash FROM test_audit_head WHERE seq = 2").first<{ hash: string }>();
    const h3 = await chainHash(head?.hash ?? "", 3, { actor: "elsewhere" });
    await env.DB.prepare("INSERT INTO test_audit_head (seq, prev_hash, hash, actor) VALUES (3, ?, ?, 'elsewhere')").bind(head?.hash ?? "", h3).run();
    expect((await append("c", 4)).seq).toBe(4);
    expect(await verifyChain(env.DB, "test_audit_head")).toMatchObject({ ok: true, records: 4 });
    // The table is emptied and refilled with other rows up to the cached seq: the hash no longer matches.
    await env.DB.exec("DELETE FROM test_audit_head");
    await env.DB.exec("DELETE FROM test_data_head");
    for (let i = 0; i < 4; i++) {
      const prev = i === 0 ? GENESIS_HASH : ((await env.DB.prepare("SELECT hash FROM test_audit_head WHERE seq = ?").bind(i).first<{ hash: string }>())?.hash ?? "");
      await env.DB.prepare("INSERT INTO test_audit_head (seq, prev_hash, hash, actor) VALUES (?, ?, ?, 'other')").bind(i + 1, prev, await chainHash(prev, i + 1, { actor: "other" })).run();
    }
    expect((await append("d", 5)).seq).toBe(5);
    expect(await verifyChain(env.DB, "test_audit_head")).toMatchObject({ ok: true, records: 5 });
    // Every data row committed with its record, none without.
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM test_data_head").first("n")).toBe(1);
  });

  it("rolls the data back and answers 503 when the record cannot be written", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_data2 (id INTEGER PRIMARY KEY)");
    await expect(
      appendChained(env.DB, {
        table: "no_such_table",
        columns: { actor: "x" },
        statements: [env.DB.prepare("INSERT INTO test_data2 (id) VALUES (1)")],
      }),
    ).rejects.toMatchObject({ status: 503, code: "audit_unavailable" });
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_data2").first<{ n: number }>();
    expect(n?.n).toBe(0);
    expect(() => canonicalJson({ b: 1, a: "x" })).not.toThrow();
    expect(canonicalJson({ b: 1, a: "x" })).toBe('{"a":"x","b":1}');
    await expect(appendChained(env.DB, { table: "bad name", columns: {} })).rejects.toThrow(/unsafe/);
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

  it("redacts identifiers and query values from URLs and drops sensitive attributes", async () => {
    const { redactAttribute, redactUrl } = await import("../../../shared/redact");
    expect(redactUrl("https://gw/v1/phi/Patient/pat_123/_history/2?family=Smith&_count=5")).toBe("https://gw/v1/phi/Patient/{id}/_history/{id}?family=REDACTED&_count=REDACTED");
    expect(redactAttribute("url.path", "/v1/payments/pay_9/capture")).toBe("/v1/payments/{id}/capture");
    expect(redactAttribute("http.request.header.authorization", "Bearer x")).toBeUndefined();
    expect(redactAttribute("db.statement", "SELECT 1")).toBe("SELECT 1");
  });
});

describe("audit chain and the caller's own constraints", () => {
  it("rethrows a failing statement's constraint error at once, without retrying or claiming an audit failure", async () => {
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_audit3 (seq INTEGER PRIMARY KEY, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, actor TEXT)");
    await env.DB.exec("CREATE TABLE IF NOT EXISTS test_unique (k TEXT PRIMARY KEY)");
    await env.DB.prepare("INSERT INTO test_unique (k) VALUES ('taken')").run();
    const err = await appendChained(env.DB, {
      table: "test_audit3",
      columns: { actor: "a" },
      statements: [env.DB.prepare("INSERT INTO test_unique (k) VALUES ('taken')")],
    }).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(ApiError);
    expect(String(err)).toMatch(/UNIQUE constraint failed: test_unique\.k/);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM test_audit3").first<{ n: number }>();
    expect(n?.n).toBe(0);
  });
});
