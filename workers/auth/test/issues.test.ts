import { describe, expect, it } from "vitest";
import { z } from "zod";
import { echoableKey, issueForClient } from "../../../shared/issues";

const PAN = "4242424242424242";

describe("validation issues as a client sees them (shared/issues.ts)", () => {
  it("repeats identifier-like keys only, never a key holding a number, a space or a long run of digits", () => {
    for (const k of ["amount", "exp_month", "resourceType", "x-trace", "$ref"]) expect(echoableKey(k), k).toBe(true);
    for (const k of [PAN, "4242 4242 4242 4242", "card4242424242424242", "John Smith", "a@b.example", "", "x".repeat(65), "line2024"]) {
      expect(echoableKey(k), k).toBe(false);
    }
  });

  it("masks a client's key in paths and unknown-key messages, and keeps the rule for the rest", () => {
    const schema = z.strictObject({ amount: z.number().int().positive(), metadata: z.record(z.string().regex(/^[a-z_]{1,40}$/), z.string()).optional(), items: z.array(z.strictObject({ sku: z.string() })).optional() });
    const issues = (input: unknown) => {
      const r = schema.safeParse(input);
      expect(r.success).toBe(false);
      return r.error?.issues.map((i) => issueForClient(i, "json")) ?? [];
    };
    const unknownPan = issues({ amount: 1, [PAN]: 1 });
    expect(unknownPan).toEqual([{ location: "json", path: "", code: "unrecognized_keys", message: "Unrecognized key (its name is not repeated)." }]);
    const badKey = issues({ amount: 1, metadata: { "4242 4242 4242 4242": "x" } });
    expect(badKey[0]).toMatchObject({ code: "invalid_key", message: "Invalid key." });
    expect(badKey[0]?.path).toMatch(/^metadata(\.\*)?$/);
    // A plain unknown key is still named (that is what a developer needs), and array indices stay.
    expect(issues({ amount: 1, colour: "red" })[0]?.message).toBe("Unrecognized key: colour");
    expect(issues({ amount: 1, items: [{ sku: "a" }, { sku: 5 }] })[0]).toMatchObject({ path: "items.1.sku", code: "invalid_type" });
    // Rule messages pass: they describe the rule, not the input.
    expect(issues({ amount: -5 })[0]).toMatchObject({ path: "amount", code: "too_small" });
    for (const i of [...unknownPan, ...badKey]) expect(JSON.stringify(i).replace(/\D/g, "")).not.toContain(PAN);
  });
});
