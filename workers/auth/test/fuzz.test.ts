import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bootstrapAuth, gw, randomIp, token } from "./helpers";

/**
 * Malformed requests on every auth route: whatever the body, content type or
 * header, the answer is a 4xx with a JSON problem body, never a 5xx.
 */
const RUNS = 60;

const contentType = fc.constantFrom(
  "application/x-www-form-urlencoded",
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "multipart/form-data; boundary=x",
  "application/xml",
  "",
);

const jsonish = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.dictionary(fc.constantFrom("grant_type", "scope", "client_id", "client_secret", "token", "name", "roles", "scopes", "x"), fc.anything()).map((v) => {
    try {
      return JSON.stringify(v);
    } catch {
      return "{}";
    }
  }),
  fc.string({ maxLength: 200 }),
  fc.string({ minLength: 5000, maxLength: 20000 }),
  fc.integer({ min: 1, max: 60 }).map((d) => "[".repeat(d * 10) + "]".repeat(d * 10)),
);

const formish = fc
  .dictionary(
    fc.oneof(fc.constantFrom("grant_type", "scope", "client_id", "client_secret", "token", "token_type_hint"), fc.string({ maxLength: 20 })),
    fc.oneof(fc.string({ maxLength: 50 }), fc.constantFrom("client_credentials", "password", "phi:read", "admin", "%00", "a".repeat(5000))),
  )
  .map((d) => new URLSearchParams(d).toString());

const body = fc.oneof(jsonish, formish);

const authHeader = fc.oneof(
  fc.constant(undefined),
  fc.constant("bootstrap"),
  fc.string({ maxLength: 100 }).map((s) => `Basic ${s}`),
  fc.string({ maxLength: 60 }).map((s) => `Basic ${btoa(unescape(encodeURIComponent(s)))}`),
  fc.string({ maxLength: 100 }).map((s) => `Bearer ${s}`),
  fc.string({ maxLength: 50 }),
);

function headerValue(v: string | undefined): string | undefined {
  if (v === "bootstrap") return bootstrapAuth();
  // Header values cannot hold control characters or non-Latin-1: a real client could not send them either.
  return v?.replace(/[^\x20-\x7e]/g, "");
}

async function expectClientError(res: Response): Promise<void> {
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  const text = await res.text();
  const parsed = JSON.parse(text) as { status?: number; error?: string };
  expect(parsed.status ?? parsed.error).toBeTruthy();
  expect(text).not.toMatch(/at [\w.]+ \(|\.ts:\d+/);
}

describe("fuzz: malformed requests on every auth route answer 4xx", () => {
  for (const path of ["/oauth/token", "/token", "/oauth/introspect", "/oauth/revoke"]) {
    it(`POST ${path}`, async () => {
      await fc.assert(
        fc.asyncProperty(body, contentType, authHeader, async (b, type, auth) => {
          const headers: Record<string, string> = { "cf-connecting-ip": randomIp() };
          if (type) headers["content-type"] = type;
          const a = headerValue(auth);
          if (a !== undefined) headers.authorization = a;
          const res = await gw(path, { method: "POST", headers, body: b });
          if (res.status === 200) {
            // Only a well-formed request from the bootstrap client may succeed.
            expect(auth).toBe("bootstrap");
            await res.body?.cancel();
            return;
          }
          await expectClientError(res);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("POST /admin/clients", async () => {
    const admin = await token("admin");
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first<{ n: number }>();
    let created = 0;
    await fc.assert(
      fc.asyncProperty(jsonish, contentType, async (b, type) => {
        const res = await gw("/admin/clients", { method: "POST", headers: { authorization: `Bearer ${admin}`, ...(type ? { "content-type": type } : {}) }, body: b });
        if (res.status === 201) {
          created++;
          await res.body?.cancel();
          return;
        }
        await expectClientError(res);
      }),
      { numRuns: RUNS },
    );
    const after = await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first<{ n: number }>();
    // Nothing is written by a refused request.
    expect((after?.n ?? 0) - (before?.n ?? 0)).toBe(created);
  });

  it("GET admin lists with arbitrary query strings, and gateway routes with arbitrary bearer tokens", async () => {
    const admin = await token("admin audit:read");
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom("limit", "cursor", "event_type", "since", "x"), fc.string({ maxLength: 300 })), fc.constantFrom("/admin/clients", "/admin/security-events"), async (q, path) => {
        const res = await gw(`${path}?${new URLSearchParams(q).toString()}`, { headers: { authorization: `Bearer ${admin}` } });
        if (res.status === 200) {
          await res.body?.cancel();
          return;
        }
        await expectClientError(res);
      }),
      { numRuns: RUNS },
    );
    await fc.assert(
      fc.asyncProperty(authHeader, fc.constantFrom("/v1/phi/Patient/x", "/v1/payments", "/introspect", "/admin/keys"), async (auth, path) => {
        const a = headerValue(auth);
        const res = await gw(path, { headers: a !== undefined ? { authorization: a } : {} });
        if (res.status === 200 && path === "/introspect") {
          expect(await res.json()).toEqual({ active: false });
          return;
        }
        await expectClientError(res);
      }),
      { numRuns: RUNS },
    );
  });
});
