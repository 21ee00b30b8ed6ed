import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { gatewayHeaders } from "./principal";

/**
 * The suite every worker behind the gateway runs in its own pool (`SELF` is that worker): its health routes
 * answer without a principal and name it, and /v1 refuses a request without a gateway principal or with a
 * forged one, while a genuine principal reaches the router (404 for a path it does not serve).
 */
export function describeInternalHealth(name: string): void {
  describe("health and the gateway guard", () => {
    it("answers /health, /readiness and / without a principal", async () => {
      expect((await SELF.fetch("https://w.test/health")).status).toBe(200);
      const ready = await SELF.fetch("https://w.test/readiness");
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: "ready" });
      const info = await (await SELF.fetch("https://w.test/")).json<{ name: string; environment: string }>();
      expect(info.environment).toBe("test");
      expect(info.name).toBe(name);
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
}
