import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

describe("smoke", () => {
  it("answers health and readiness through every binding", async () => {
    const res = await SELF.fetch("https://gw.test/readiness");
    expect(await res.json()).toMatchObject({ status: "ready" });
    expect(env.ENVIRONMENT).toBe("test");
  });
});
