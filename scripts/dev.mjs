#!/usr/bin/env node
// `npm run dev`: the whole platform on one machine, offline, no Cloudflare account.
//  1. generates what is missing of the local secrets (.dev.vars files, git-ignored)
//  2. applies every local D1 migration
//  3. serves all five workers with one `wrangler dev` on http://127.0.0.1:8787
// Port: `npm run dev -- --port 9000` or PORT=9000.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { ensureDevSecrets } from "./dev-secrets.mjs";
import { ensureDocsAssets } from "./docs-assets.mjs";
import { databasesOf, ROOT, WORKERS, WRANGLER_BIN, WRANGLER_ENV } from "./workers.mjs";

const argv = process.argv.slice(2);
const portArg = argv.indexOf("--port");
const port = portArg >= 0 ? argv[portArg + 1] : (process.env.PORT ?? "8787");
const persist = path.join(ROOT, ".wrangler", "state");
const env = { ...process.env, ...WRANGLER_ENV };

const rootVars = ensureDevSecrets();
ensureDocsAssets();

for (const w of WORKERS) {
  for (const [, name, dir] of databasesOf(w)) {
    if (!existsSync(dir)) continue;
    execFileSync(WRANGLER_BIN, ["d1", "migrations", "apply", name, "--local", "-c", w.config, "--persist-to", persist], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "ignore", "inherit"],
    });
    console.log(`migrations applied: ${name}`);
  }
}

// The gateway's config first: it is the worker that answers on the port.
const configs = [...WORKERS].sort((a, b) => (a.name === "auth" ? -1 : b.name === "auth" ? 1 : 0)).flatMap((w) => ["-c", w.config]);
const base = `http://127.0.0.1:${port}`;
const child = spawn(
  WRANGLER_BIN,
  ["dev", ...configs, "--ip", "127.0.0.1", "--port", port, "--persist-to", persist, "--var", `JWT_ISSUER:${base}`, "--show-interactive-dev-session=false", ...argv.filter((a, i) => a !== "--port" && argv[i - 1] !== "--port")],
  { cwd: ROOT, env, stdio: "inherit" },
);

console.log(`
Platform starting on ${base}
Bootstrap admin client: BOOTSTRAP_CLIENT_ID and BOOTSTRAP_CLIENT_SECRET in ${path.join(ROOT, ".dev.vars")}
  client id: ${rootVars.BOOTSTRAP_CLIENT_ID}
Get a token:
  curl -s -u "$BOOTSTRAP_CLIENT_ID:$BOOTSTRAP_CLIENT_SECRET" -d grant_type=client_credentials ${base}/oauth/token
`);

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
