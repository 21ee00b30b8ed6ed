import { PRINCIPAL_HEADER, signPrincipal, type Principal } from "../principal";
import { DEFAULT_TENANT_ID } from "../tenants";

/**
 * Test helper: the header the gateway would attach for this caller, so a
 * worker's own tests can call it directly (the gateway path is tested in auth).
 */
export async function gatewayHeaders(
  key: string,
  p: Partial<Principal> & { scopes: string[] },
): Promise<Record<string, string>> {
  const principal: Principal = {
    sub: p.sub ?? "cli_test",
    clientId: p.clientId ?? p.sub ?? "cli_test",
    roles: p.roles ?? [],
    scopes: p.scopes,
    tokenId: p.tokenId ?? crypto.randomUUID(),
    tenantId: p.tenantId ?? DEFAULT_TENANT_ID,
    shard: p.shard ?? 0,
    ip: p.ip ?? "127.0.0.1",
    iat: p.iat ?? Math.floor(Date.now() / 1000),
    ...(p.deviceId ? { deviceId: p.deviceId } : {}),
  };
  return { [PRINCIPAL_HEADER]: await signPrincipal(key, principal) };
}
