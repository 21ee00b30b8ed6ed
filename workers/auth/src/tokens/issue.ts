import { SignJWT } from "jose";
import type { KeySet } from "./keys";

export interface IssueInput {
  issuer: string;
  audience: string;
  clientId: string;
  scopes: string[];
  roles: string[];
  deviceId?: string | null;
  /** The client's tenant and its PHI shard; null (no claims) for a platform client. */
  tenant?: { id: string; shard: number } | null;
  ttlSeconds: number;
  now: number;
}

export interface IssuedToken {
  token: string;
  jti: string;
  expiresIn: number;
}

/** RFC 9068 JWT access token: `typ: at+jwt`, `kid`, and the claims of section 2.2. */
export async function issueAccessToken(ks: KeySet, input: IssueInput): Promise<IssuedToken> {
  const jti = crypto.randomUUID();
  const claims: Record<string, unknown> = {
    client_id: input.clientId,
    scope: input.scopes.join(" "),
    roles: input.roles,
  };
  if (input.deviceId) claims.device_id = input.deviceId;
  // The shard rides in the token so the gateway routes with no D1 read (README "Tenants": a move revokes).
  if (input.tenant) {
    claims.tenant_id = input.tenant.id;
    claims.tenant_shard = input.tenant.shard;
  }
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: ks.alg, typ: "at+jwt", kid: ks.signingKid })
    .setIssuer(input.issuer)
    .setSubject(input.clientId)
    .setAudience(input.audience)
    .setIssuedAt(input.now)
    .setNotBefore(input.now)
    .setExpirationTime(input.now + input.ttlSeconds)
    .setJti(jti)
    .sign(ks.sign);
  return { token, jti, expiresIn: input.ttlSeconds };
}
