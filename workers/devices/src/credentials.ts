import { tracedRpc } from "../../../shared/manual-spans";

/**
 * The auth worker's `ClientRegistry` RPC entrypoint, as this worker uses it over
 * its `AUTH` service binding (declared here rather than imported, so no other
 * worker's types leak into this one).
 */
export interface DeviceCredentialsApi {
  /** `tenantId`: the device's tenant, which its credentials' tokens must carry (its principal acts only there). */
  createDeviceClient(input: { deviceId: string; name: string; createdBy: string; tenantId: string }): Promise<{ client_id: string; client_secret: string }>;
  disableDeviceClients(deviceId: string): Promise<number>;
}

export function credentialsApi(env: Env): DeviceCredentialsApi {
  // Each call is a client span of the request's trace (the library traces `fetch` only).
  return tracedRpc(env.AUTH as unknown as DeviceCredentialsApi, "ClientRegistry");
}
