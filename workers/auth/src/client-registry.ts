import { WorkerEntrypoint } from "cloudflare:workers";
import { DEFAULT_TENANT_ID, PLATFORM_TENANT_ID, TENANT_ID_PATTERN } from "../../../shared/tenants";
import { ClientStore } from "./clients";
import { authConfig, viewOptions } from "./config";
import { noteClientsDisabled } from "./revocation/view";

export interface DeviceCredentials {
  client_id: string;
  client_secret: string;
}

/**
 * RPC entrypoint for internal callers (the devices worker, over its service
 * binding): device credentials have no HTTP meaning, so no public route exists.
 */
export class ClientRegistry extends WorkerEntrypoint<Env> {
  /**
   * A client with role `device`, bound to one device id, in the tenant of the principal that
   * registered the device (`tenantId`: `ten_platform` makes a platform client; omitted, the
   * default tenant, as before tenants). The secret is returned once.
   */
  async createDeviceClient(input: { deviceId: string; name: string; createdBy: string; tenantId?: string }): Promise<DeviceCredentials> {
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(input.deviceId)) throw new Error("invalid device id");
    if (input.tenantId !== undefined && !TENANT_ID_PATTERN.test(input.tenantId)) throw new Error("invalid tenant id");
    const tenantId = input.tenantId === undefined ? DEFAULT_TENANT_ID : input.tenantId === PLATFORM_TENANT_ID ? null : input.tenantId;
    const { client, secret } = await new ClientStore(this.env.DB, authConfig(this.env)).create({
      tenantId,
      name: input.name.slice(0, 100),
      roles: ["device"],
      scopes: [],
      deviceId: input.deviceId,
      createdBy: input.createdBy.slice(0, 200),
    });
    // Device clients are created with a secret (no auth method asked): this guards the type only.
    if (secret === undefined) throw new Error("device client created without a secret");
    return { client_id: client.id, client_secret: secret };
  }

  /** Disables every client bound to the device; their tokens are refused from then on. */
  async disableDeviceClients(deviceId: string): Promise<number> {
    const ids = await new ClientStore(this.env.DB, authConfig(this.env)).disableByDevice(deviceId);
    // Refused in this isolate at once; every other gateway isolate within the revocation bound.
    noteClientsDisabled(ids, viewOptions(this.env), Date.now());
    return ids.length;
  }
}
