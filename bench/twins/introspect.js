// Limit twin of introspection: verify an ES256 JWT with WebCrypto, one D1 query (revocation and client).
const enc = new TextEncoder();
const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
let key;

export default {
  async fetch(request, env) {
    key ??= crypto.subtle.importKey("jwk", JSON.parse(env.TWIN_PUBLIC_JWK), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const token = (request.headers.get("authorization") ?? "").slice(7);
    const [h, p, s] = token.split(".");
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, await key, unb64u(s), enc.encode(`${h}.${p}`));
    if (!ok) return Response.json({ active: false });
    const claims = JSON.parse(new TextDecoder().decode(unb64u(p)));
    const row = await env.DB.prepare("SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = ?1) AS revoked, (SELECT disabled FROM clients WHERE id = ?2) AS disabled")
      .bind(claims.jti, claims.client_id)
      .first();
    const active = claims.exp > Date.now() / 1000 && !row.revoked && row.disabled === 0;
    return Response.json(active ? { active, ...claims } : { active: false }, { headers: { "cache-control": "no-store" } });
  },
};
