import { describe, expect, it } from "vitest";
import { API_CSP } from "../../../shared/http";
import { DOCS_CSP } from "../src/docs";
import { gw } from "./helpers";

describe("GET /docs", () => {
  it("serves the Swagger UI page with a CSP relaxed for this page only, loading only same-origin files", async () => {
    const res = await gw("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(res.headers.get("content-security-policy")).toBe(DOCS_CSP);
    // Same origin for scripts, styles and fetches; no inline script, no eval, no other host.
    expect(DOCS_CSP).toContain("script-src 'self';");
    expect(DOCS_CSP).toContain("connect-src 'self';");
    expect(DOCS_CSP).not.toMatch(/unsafe-|https?:|\*/);
    // The rest of the strict headers stay.
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const html = await res.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
    expect(scripts.length).toBe(2);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/ src="\/docs\//);
      expect(body).toBe("");
    }
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual(["/docs/assets/favicon-32x32.png", "/docs/assets/swagger-ui.css", "/docs/assets/index.css", "/docs/assets/swagger-ui-bundle.js", "/docs/init.js"]);
    expect(html).not.toMatch(/style=/);
  });

  it("keeps the strict API policy on every other response, including the docs' own files", async () => {
    for (const p of ["/openapi.json", "/health", "/.well-known/jwks.json", "/docs/init.js", "/docs/assets/swagger-ui.css", "/docs/assets/missing.js", "/nope"]) {
      const res = await gw(p);
      await res.body?.cancel();
      expect(res.headers.get("content-security-policy"), p).toBe(API_CSP);
    }
  });

  it("starts Swagger UI on the platform's document with the client-credentials flow", async () => {
    const res = await gw("/docs/init.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const js = await res.text();
    expect(js).toContain('url: "/openapi.json"');
    expect(js).toContain("validatorUrl: null");
    expect(js).toContain("persistAuthorization: false");
    // The scheme it offers: client credentials against this gateway's token endpoint.
    const doc = await (await gw("/openapi.json")).json<{ paths: Record<string, unknown>; components: { securitySchemes: { oauth2: { flows: Record<string, { tokenUrl: string }> } } } }>();
    expect(Object.keys(doc.components.securitySchemes.oauth2.flows)).toEqual(["clientCredentials"]);
    expect(new URL(doc.components.securitySchemes.oauth2.flows.clientCredentials?.tokenUrl ?? "").pathname).toBe("/oauth/token");
    // Like /openapi.json, the page is not an API operation: it is not in the document.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith("/docs") || p === "/openapi.json")).toEqual([]);
  });

  it("serves Swagger UI's files from Workers Static Assets with their content types", async () => {
    const cases = [
      ["/docs/assets/swagger-ui-bundle.js", /^(application|text)\/javascript/, 1_000_000],
      ["/docs/assets/swagger-ui.css", /^text\/css/, 100_000],
      ["/docs/assets/index.css", /^text\/css/, 100],
      ["/docs/assets/favicon-32x32.png", /^image\/png$/, 100],
    ] as const;
    for (const [p, type, minBytes] of cases) {
      const res = await gw(p);
      expect(res.status, p).toBe(200);
      expect(res.headers.get("content-type"), p).toMatch(type);
      expect(res.headers.get("x-content-type-options"), p).toBe("nosniff");
      expect(res.headers.get("x-request-id"), p).toBeTruthy();
      expect((await res.arrayBuffer()).byteLength, p).toBeGreaterThan(minBytes);
    }
    const js = await (await gw("/docs/assets/swagger-ui-bundle.js")).text();
    expect(js).toContain("SwaggerUIBundle");
  });

  it("answers an unknown file, another method and a path outside /docs/assets like any other route", async () => {
    const missing = await gw("/docs/assets/nope.js");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    expect(await missing.json()).toMatchObject({ status: 404, code: "not_found" });
    const post = await gw("/docs", { method: "POST" });
    expect(post.status).toBe(405);
    await post.body?.cancel();
    // The assets directory is reachable only under /docs/assets/<file>: not at /docs/, not in sub-folders.
    for (const p of ["/docs/swagger-ui.css", "/docs/assets/", "/docs/assets/x/swagger-ui.css", "/docs/assets/.hidden", "/docs/assets/%2e%2e%2fLICENSE"]) {
      const res = await gw(p);
      expect(res.status, p).toBe(404);
      expect(res.headers.get("content-type"), p).toBe("application/problem+json");
      await res.body?.cancel();
    }
  });
});
