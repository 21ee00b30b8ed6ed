// Limit twin of introspection (POST /oauth/introspect, RFC 7662): authenticate the calling client (one D1
// select, the same secret hash check), verify the token's ES256 signature and claims with jose, and check
// revocation and the client's state (one D1 query, the same as ours); answer active + claims. No lockout
// bookkeeping (ours: two more D1 statements), no framework.
import { authenticateClient, basic, json, tokenStillValid, verifyToken } from "./common.js";

export default {
  async fetch(request, env) {
    const params = new URLSearchParams(new TextDecoder().decode(await request.arrayBuffer()));
    if (!(await authenticateClient(env.DB, basic(request)))) return json({ error: "invalid_client" }, 401);
    const claims = await verifyToken(env, params.get("token") ?? "");
    if (!claims || !(await tokenStillValid(env.DB, claims))) return json({ active: false });
    return json({ active: true, token_type: "Bearer", ...claims });
  },
};
