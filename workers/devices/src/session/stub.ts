import { tracedRpc } from "../../../../shared/manual-spans";

/**
 * The Durable Object of one device (named by its id: one object per device, worldwide).
 * RPC calls on it are client spans of the calling request's trace.
 */
export function sessionStub(env: Env, deviceId: string) {
  return tracedRpc(env.SESSIONS.get(env.SESSIONS.idFromName(deviceId)), "DeviceSession");
}
