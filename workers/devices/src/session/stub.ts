import { tracedRpc } from "../../../../shared/manual-spans";
import { DEFAULT_TENANT_ID } from "../../../../shared/tenants";

/**
 * The object's name: the tenant and the device id, so a tenant can only ever address
 * objects of its own (the registry check before every call is the first guard, this
 * the second). The default tenant's objects keep the names they had before tenants
 * (the device id alone), so their stored readings stay theirs.
 */
export function sessionName(tenantId: string, deviceId: string): string {
  return tenantId === DEFAULT_TENANT_ID ? deviceId : `${tenantId}/${deviceId}`;
}

/**
 * The Durable Object of one device of one tenant (one object per device, worldwide).
 * RPC calls on it are client spans of the calling request's trace.
 */
export function sessionStub(env: Env, tenantId: string, deviceId: string) {
  return tracedRpc(env.SESSIONS.get(env.SESSIONS.idFromName(sessionName(tenantId, deviceId))), "DeviceSession");
}
