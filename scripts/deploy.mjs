#!/usr/bin/env node
// `npm run deploy -- --env staging|production`: applies remote D1 migrations, then deploys the five
// workers in dependency order (internal workers first, the gateway last), stopping at the first failure.
// Needs a Cloudflare login (`wrangler login` or CLOUDFLARE_API_TOKEN) and the one-time setup in the README.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { unstable_readConfig } from "wrangler";
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

/**
 * The one-time setup this environment still lacks, read from the configs as wrangler reads them: every D1 database
 * whose id is still a `REPLACE-WITH-...` placeholder (phi's shards included), with the command that creates it, and
 * the R2 buckets the environment binds (which must exist; they cannot be checked offline). Found before anything
 * runs, so a first deploy does not stop halfway at the first missing database.
 */
function missingSetup() {
  const databases = [];
  const buckets = [];
  for (const w of WORKERS) {
    const config = unstable_readConfig({ config: path.join(ROOT, w.config), env });
    for (const d of config.d1_databases ?? []) {
      if (String(d.database_id ?? "").startsWith("REPLACE-WITH")) databases.push({ name: d.database_name, config: w.config, placeholder: d.database_id });
    }
    for (const b of config.r2_buckets ?? []) buckets.push(b.bucket_name);
  }
  return { databases, buckets };
}

const setup = missingSetup();
if (setup.databases.length > 0) {
  const lines = [
    `${env}: ${setup.databases.length} D1 database id(s) are still placeholders. Create each database and put its id in place of the placeholder:`,
    ...setup.databases.map((d) => `  wrangler d1 create ${d.name}    # then ${d.config}: ${d.placeholder}`),
    `and make sure these R2 buckets exist: ${setup.buckets.map((b) => `wrangler r2 bucket create ${b}`).join("; ")}.`,
  ];
  if (!dryRun) {
    console.error(`${lines.join("\n")}\nNothing was deployed (README, "Deploying an environment").`);
    process.exit(2);
  }
  console.warn(`${lines.join("\n")}\n(--dry-run: building anyway.)`);
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
