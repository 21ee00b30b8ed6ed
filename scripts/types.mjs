#!/usr/bin/env node
// `wrangler types` for every worker: the generated `Env` is never written by hand.
// `--check` fails when a checked-in file no longer matches its wrangler config.
import { execFileSync } from "node:child_process";
import path from "node:path";
import { ensureDevSecrets } from "./dev-secrets.mjs";
import { ensureDocsAssets } from "./docs-assets.mjs";
import { ROOT, WORKERS, WRANGLER_BIN, WRANGLER_ENV } from "./workers.mjs";

const check = process.argv.includes("--check");
// Secret names come from .dev.vars, so make sure every one exists first.
ensureDevSecrets({ quiet: true });
ensureDocsAssets(); // the auth config's [assets] directory must exist
let failed = false;
for (const w of WORKERS) {
  const out = path.join("workers", w.name, "worker-configuration.d.ts");
  try {
    execFileSync(WRANGLER_BIN, ["types", "-c", w.config, ...(check ? ["--check"] : []), out], {
      cwd: ROOT,
      env: { ...process.env, ...WRANGLER_ENV },
      stdio: check ? "pipe" : "inherit",
    });
  } catch (err) {
    failed = true;
    console.error(`${w.name}: ${out} is out of date with ${w.config}; run npm run types`);
    if (err.stdout) process.stderr.write(err.stdout);
  }
}
if (failed) process.exit(1);
if (check) console.log("wrangler types: all five Env files are up to date");
