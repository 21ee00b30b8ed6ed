import { PRINCIPAL_HEADER, signPrincipal, type Principal } from "../../../shared/principal";
import { PLATFORM_TENANT_ID } from "../../../shared/tenants";
import { authConfig } from "./config";
import type { AdminCaller } from "./tenant-access";

/** The data services auth calls on `/internal` routes (never forwarded by the gateway). */
const BINDINGS = { phi: "PHI", payments: "PAYMENTS", devices: "DEVICES" } as const;
export type DataService = keyof typeof BINDINGS;

/**
 * A JSON POST to a data service's `/internal` path, over its service binding, as the platform admin who
 * asked (offboarding, tenant moves): a principal only auth can sign, with the `admin` scope alone.
 */
export async function callInternal(
  env: Env,
  caller: AdminCaller,
  call: { service: DataService; path: string; body: unknown; requestId: string; ip: string },
): Promise<Response> {
  const principal: Principal = {
    sub: caller.sub,
    clientId: caller.clientId,
    roles: caller.roles,
    scopes: ["admin"],
    tokenId: caller.tokenId,
    tenantId: PLATFORM_TENANT_ID,
    shard: 0,
    ip: call.ip,
    iat: Math.floor(Date.now() / 1000),
  };
  return env[BINDINGS[call.service]].fetch(
    new Request(`https://${call.service}.internal${call.path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-request-id": call.requestId,
        [PRINCIPAL_HEADER]: await signPrincipal(authConfig(env).GATEWAY_HMAC_KEY, principal),
      },
      body: JSON.stringify(call.body),
    }),
  );
}
