// Limit twin of token issuance: the essential work only, no framework. Look up the client in D1,
// compare the secret's SHA-256 in constant time, sign an ES256 JWT with WebCrypto.
const enc = new TextEncoder();
const b64u = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
let key;

async function signingKey(env) {
  key ??= crypto.subtle.importKey("jwk", JSON.parse(env.TWIN_JWK), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  return key;
}

export default {
  async fetch(request, env) {
    const [id, secret] = atob((request.headers.get("authorization") ?? "").slice(6)).split(":");
    const row = await env.DB.prepare("SELECT secret_hash, roles, scopes FROM clients WHERE id = ?").bind(id).first();
    const given = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(secret)));
    const stored = row ? Uint8Array.from(row.secret_hash.match(/../g).map((h) => parseInt(h, 16))) : new Uint8Array(32);
    let diff = row ? 0 : 1;
    for (let i = 0; i < 32; i++) diff |= given[i] ^ stored[i];
    if (diff) return new Response("no", { status: 401 });
    const now = Math.floor(Date.now() / 1000);
    const header = b64u(enc.encode(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "twin" })));
    const payload = b64u(enc.encode(JSON.stringify({ iss: "twin", sub: id, aud: "twin", client_id: id, exp: now + 900, iat: now, nbf: now, jti: crypto.randomUUID(), scope: JSON.parse(row.scopes).join(" "), roles: JSON.parse(row.roles) })));
    const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, await signingKey(env), enc.encode(`${header}.${payload}`));
    return Response.json({ access_token: `${header}.${payload}.${b64u(sig)}`, token_type: "Bearer", expires_in: 900 }, { headers: { "cache-control": "no-store" } });
  },
};
