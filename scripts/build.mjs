#!/usr/bin/env node
// Bundles every worker with `wrangler deploy --dry-run --outdir` (no login, no network) and
// prints raw and gzip sizes against each worker's budget. Usage:
//   node scripts/build.mjs [--env staging|production] [--only name,name] [--out dir] [--quiet]
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ensureDocsAssets } from "./docs-assets.mjs";
import { ROOT, WORKERS, WRANGLER_BIN, WRANGLER_ENV } from "./workers.mjs";

export function buildWorker(name, { env, outRoot = path.join(ROOT, ".tmp", "build"), minify = false } = {}) {
  const w = WORKERS.find((x) => x.name === name);
  if (!w) throw new Error(`unknown worker ${name}`);
  const outdir = path.join(outRoot, env ?? "local", name);
  if (name === "auth") ensureDocsAssets(); // its [assets] directory must exist
  rmSync(outdir, { recursive: true, force: true });
  const args = ["deploy", "--dry-run", "-c", w.config, "--outdir", outdir];
  if (env) args.push("--env", env);
  if (minify) args.push("--minify");
  try {
    execFileSync(WRANGLER_BIN, args, { cwd: ROOT, env: { ...process.env, ...WRANGLER_ENV }, stdio: "pipe" });
  } catch (err) {
    const out = `${err.stdout ?? ""}${err.stderr ?? ""}`;
    throw new Error(`wrangler deploy --dry-run failed for ${name}${env ? ` (${env})` : ""}:\n${out}`, { cause: err });
  }
  return { outdir, main: path.join(outdir, "index.js") };
}

function sizes(dir) {
  let raw = 0;
  let gz = 0;
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory() || f.endsWith(".map")) continue;
    const buf = readFileSync(p);
    raw += buf.length;
    gz += gzipSync(buf, { level: 9 }).length;
  }
  return { raw, gz };
}

const kib = (n) => (n / 1024).toFixed(1);

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const opt = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const envs = opt("--env") ? [opt("--env")] : ["staging", "production"];
  const only = opt("--only")?.split(",");
  const rows = [];
  let over = false;
  for (const env of envs) {
    for (const w of WORKERS) {
      if (only && !only.includes(w.name)) continue;
      const { outdir } = buildWorker(w.name, { env, minify: true });
      const s = sizes(outdir);
      const ok = s.gz <= w.budgetKiB * 1024;
      over ||= !ok;
      rows.push(`| ${w.name} | ${env} | ${kib(s.raw)} | ${kib(s.gz)} | ${w.budgetKiB} | ${ok ? "ok" : "OVER"} |`);
    }
  }
  console.log("| worker | env | raw KiB | gzip KiB | budget gzip KiB | |\n| --- | --- | ---: | ---: | ---: | --- |");
  console.log(rows.join("\n"));
  if (over) {
    console.error("a worker is over its gzip budget");
    process.exit(1);
  }
}
