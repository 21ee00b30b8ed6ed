import { describe, expect, it } from "vitest";
import { describeInternalHealth } from "../../../shared/testing/health";

describeInternalHealth("payments");

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
