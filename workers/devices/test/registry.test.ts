import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, CLINICIAN, deviceInput, WRITER } from "./helpers";

describe("device registry", () => {
  it("registers a device with credentials bound to it in auth", async () => {
    const input = deviceInput();
    const res = await call(WRITER, "/v1/devices", { method: "POST", body: input });
    expect(res.status).toBe(201);
    const body = await res.json<Record<string, unknown> & { id: string; credentials: { client_id: string; client_secret: string } }>();
    expect(body).toMatchObject({ ...input, status: "active", created_by: "cli_maker", decommissioned_at: null });
    expect(body.id).toMatch(/^dev_/);
    expect(res.headers.get("location")).toBe(`/v1/devices/${body.id}`);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(body.credentials.client_secret.length).toBeGreaterThan(30);
    const client = await env.AUTH_DB.prepare("SELECT roles, device_id, disabled, secret_hash FROM clients WHERE id = ?")
      .bind(body.credentials.client_id)
      .first<{ roles: string; device_id: string; disabled: number; secret_hash: string }>();
    expect(client).toMatchObject({ device_id: body.id, disabled: 0 });
    expect(JSON.parse(client?.roles ?? "[]")).toEqual(["device"]);
    expect(client?.secret_hash).not.toContain(body.credentials.client_secret);

    const read = await call(CLINICIAN, `/v1/devices/${body.id}`);
    expect(read.status).toBe(200);
    const dev = await read.json<Record<string, unknown>>();
    expect(dev).not.toHaveProperty("credentials");
    expect(dev.client_id).toBe(body.credentials.client_id);
  });
});
