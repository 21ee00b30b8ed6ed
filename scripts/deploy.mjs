#!/usr/bin/env node
// `npm run deploy -- --env staging|production`: applies remote D1 migrations, then deploys the five
// workers in dependency order (internal workers first, the gateway last), stopping at the first failure.
// Needs a Cloudflare login (`wrangler login` or CLOUDFLARE_API_TOKEN) and the one-time setup in the README.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { ensureDocsAssets } from "./docs-assets.mjs";
import { databasesOf, ROOT, WORKERS, WRANGLER_BIN } from "./workers.mjs";

const argv = process.argv.slice(2);
const i = argv.indexOf("--env");
const env = i >= 0 ? argv[i + 1] : undefined;
const dryRun = argv.includes("--dry-run");
// First deploy of an environment only: auth and devices bind to each other (see auth-placeholder.js).
const first = argv.includes("--first");
if (env !== "staging" && env !== "production") {
  console.error("usage: npm run deploy -- --env staging|production [--first] [--dry-run]");
  process.exit(2);
}

function run(label, args) {
  console.log(`\n== ${label}\n$ wrangler ${args.join(" ")}`);
  if (dryRun && args[0] !== "deploy") return;
  const r = spawnSync(WRANGLER_BIN, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) {
    console.error(`\ndeploy stopped: "${label}" failed (exit ${r.status ?? r.signal}). Nothing after it was deployed.`);
    process.exit(1);
  }
}

// The gateway uploads Swagger UI's files for /docs as static assets.
ensureDocsAssets({ quiet: false });

// Migrations first: new code may need the new schema; our migrations only add, so old code keeps working.
// Every PHI shard too: "phi-shard-1" locally is "phi-<env>-shard-1" in an environment.
for (const w of WORKERS) {
  for (const [, name, dir] of databasesOf(w)) {
    if (!existsSync(dir)) continue;
    const remote = `${w.db}-${env}${name.slice(w.db.length)}`;
    run(`migrations: ${remote}`, ["d1", "migrations", "apply", remote, "--remote", "-c", w.config, "--env", env]);
  }
}
if (first) {
  // Never on an environment that already has its gateway: this would replace it with a 503 placeholder.
  run(`placeholder for auth-${env} (first deploy only)`, [
    "deploy",
    path.join("scripts", "deploy", "auth-placeholder.js"),
    "--name",
    `auth-${env}`,
    "--compatibility-date",
    "2026-08-15",
    ...(dryRun ? ["--dry-run"] : []),
  ]);
}
for (const w of WORKERS) {
  run(`deploy: ${w.name} (${env})`, ["deploy", "-c", w.config, "--env", env, ...(dryRun ? ["--dry-run"] : [])]);
}
console.log(dryRun ? `\nDry run: all five bundles built for ${env}; nothing was deployed.` : `\nAll five workers deployed to ${env}.`);
