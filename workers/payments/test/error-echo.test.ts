import { describe, expect, it } from "vitest";
import { call, card, tableCounts } from "./helpers";

/** A valid (Luhn, visa) card number sent where a key goes: the 400 must not carry it back. */
const PAN = "4571736001234566";

describe("a card number sent as a JSON key", () => {
  it("gets a 400 that names neither the key nor the number, and nothing is written", async () => {
    const before = await tableCounts();
    const bodies = [
      { amount: 100, currency: "usd", card: card(), [PAN]: 1 },
      { amount: 100, currency: "usd", card: card(), metadata: { "4571 7360 0123 4566": "x" } },
      { amount: 100, currency: "usd", card: { ...card(), [PAN]: "x" } },
    ];
    for (const body of bodies) {
      const res = await call("POST", "/v1/payments", { body });
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      const text = await res.text();
      expect(JSON.parse(text)).toMatchObject({ code: "invalid_request" });
      expect(text.replace(/\D/g, "")).not.toContain(PAN);
    }
    const pm = await call("POST", "/v1/payments/payment-methods", { body: { ...card(), [PAN]: true } });
    expect(pm.status).toBe(400);
    expect((await pm.text()).replace(/\D/g, "")).not.toContain(PAN);
    expect(await tableCounts()).toEqual(before);
  });
});
