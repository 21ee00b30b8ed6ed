import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gatewayHeaders } from "../../../shared/testing/principal";

describe("health and the gateway guard", () => {
  it("answers /health, /readiness and / without a principal", async () => {
    expect((await SELF.fetch("https://w.test/health")).status).toBe(200);
    const ready = await SELF.fetch("https://w.test/readiness");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready" });
    const info = await (await SELF.fetch("https://w.test/")).json<{ name: string; environment: string }>();
    expect(info.environment).toBe("test");
    expect(info.name).toBe("payments");
  });

  it("refuses /v1 without a gateway principal, and a forged one", async () => {
    const res = await SELF.fetch(`https://w.test/v1/x`);
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    const forged = await gatewayHeaders("not-the-gateway-key-not-the-gateway-key", { scopes: ["admin"] });
    expect((await SELF.fetch("https://w.test/v1/x", { headers: forged })).status).toBe(401);
    const real = await gatewayHeaders(env.GATEWAY_HMAC_KEY, { scopes: [] });
    expect((await SELF.fetch("https://w.test/v1/x", { headers: real })).status).toBe(404);
  });
});

describe("gateway contract", () => {
  it("serves exactly the /v1 routes the gateway's table forwards to it", async () => {
    const { app } = await import("../src/index");
    const { PAYMENTS_ROUTES } = await import("../../auth/src/gateway/routes/payments");
    const methods = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);
    const served = new Set(app.routes.filter((r) => r.path.startsWith("/v1/payments") && methods.has(r.method)).map((r) => `${r.method} ${r.path}`));
    const table = new Set(PAYMENTS_ROUTES.map((r) => `${r.method} ${r.path === "/" ? "/v1/payments" : "/v1/payments" + r.path}`));
    expect([...served].sort()).toEqual([...table].sort());
  });
});
