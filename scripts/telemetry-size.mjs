#!/usr/bin/env node
// What telemetry adds to each worker's production bundle: esbuild's metafile from
// `wrangler deploy --dry-run --minify --metafile` attributes every output byte to an input;
// this sums the bytes of the OpenTelemetry libraries and of our telemetry modules.
// Usage: node scripts/telemetry-size.mjs [--env production]
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, WORKERS, WRANGLER_BIN, WRANGLER_ENV } from "./workers.mjs";

const TELEMETRY = [
  /node_modules\/@microlabs\//,
  /node_modules\/@opentelemetry\//,
  /node_modules\/(@protobufjs|protobufjs|long)\//,
  /^shared\/(telemetry|metrics|metrics-export|manual-spans|redact)\.ts$/,
];

const envArg = process.argv.indexOf("--env");
const env = envArg > 0 ? process.argv[envArg + 1] : "production";
const kib = (n) => (n / 1024).toFixed(1);
console.log(`| worker | bundle raw KiB | telemetry raw KiB | share | bundle gzip KiB | telemetry gzip KiB (est.) |\n| --- | ---: | ---: | ---: | ---: | ---: |`);
for (const w of WORKERS) {
  const outdir = path.join(ROOT, ".tmp", "telemetry-size", w.name);
  rmSync(outdir, { recursive: true, force: true });
  const meta = path.join(outdir, "meta.json");
  execFileSync(WRANGLER_BIN, ["deploy", "--dry-run", "-c", w.config, "--env", env, "--minify", "--outdir", outdir, "--metafile", meta], {
    cwd: ROOT,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: "pipe",
  });
  const m = JSON.parse(readFileSync(meta, "utf8"));
  // Metafile paths are relative to the worker's config folder.
  const base = path.dirname(path.join(ROOT, w.config));
  const [outName, out] = Object.entries(m.outputs).find(([k]) => k.endsWith(".js"));
  let tel = 0;
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    const rel = path.relative(ROOT, path.resolve(base, input)).replace(/\\/g, "/");
    if (TELEMETRY.some((re) => re.test(rel))) tel += bytesInOutput;
  }
  const code = readFileSync(path.resolve(base, outName));
  const gz = gzipSync(code, { level: 9 }).length;
  // gzip is not additive per input: the telemetry share of the compressed bundle is estimated pro rata.
  console.log(`| ${w.name} | ${kib(code.length)} | ${kib(tel)} | ${((100 * tel) / code.length).toFixed(0)} % | ${kib(gz)} | ≈${kib((gz * tel) / code.length)} |`);
}
